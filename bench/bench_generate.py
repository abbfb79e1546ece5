"""Generation throughput of the bundled LLM on CPU: tokens/s at batch 1 vs batch 8 (and optional variants).

    .venv/bin/python bench/bench_generate.py [--prompts 8] [--max-new-tokens 32] [--threads 1,2] [--attn sdpa,eager]

Prompts are real RAG prompts: SQuAD dev questions with their gold paragraph as source [1] (the shape `ask`
and `compare` send). The same prompts run one by one (batch 1, the baseline) and together (batch 8);
tokens/s counts generated tokens only. Each variant (threads × attention) is measured in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SQUAD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad" / "squad-v1.1-dev-even.json"


def squad_prompts(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    from ragtune.generate.prompts import build_messages
    from ragtune.types import Chunk, Hit

    data = json.loads(SQUAD.read_text())
    rows = [
        (article["title"], paragraph["context"], qa["question"])
        for article in data["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]
    random.Random(seed).shuffle(rows)
    return [
        build_messages(question, [Hit(Chunk("gold#0", "gold", context, title=title.replace("_", " ")), 1.0)])
        for title, context, question in rows[:n]
    ]


def measure(generator, prompts, batch_size: int, max_new_tokens: int) -> tuple[float, int]:
    """(seconds, generated tokens) answering all prompts in batches of batch_size."""
    generator.batch_size = batch_size
    start = time.perf_counter()
    tokens = 0
    for i in range(0, len(prompts), batch_size):
        tokens += sum(g.completion_tokens for g in generator.generate(prompts[i : i + batch_size], max_new_tokens))
    return time.perf_counter() - start, tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", default="", help="comma-separated torch thread counts (default: auto)")
    parser.add_argument("--attn", default="sdpa", help="comma-separated attention implementations")
    args = parser.parse_args()
    if not SQUAD.is_file():
        print(f"shared SQuAD data not found at {SQUAD}; nothing to measure")
        return 0

    from ragtune.generate.hf import HFGenerator, choose_threads
    from ragtune.models import resolve_llm

    model_dir = resolve_llm()
    prompts = squad_prompts(args.prompts)
    thread_counts = [int(t) for t in args.threads.split(",") if t] or [None]  # None: HFGenerator's auto choice
    print(f"model {model_dir.name}; {len(prompts)} SQuAD RAG prompts; max_new_tokens {args.max_new_tokens}; "
          f"cpu cores {os.cpu_count()}; load avg {os.getloadavg()[0]:.1f}")
    rows = []
    baseline = None
    for attn in args.attn.split(","):
        generator = HFGenerator(model_dir, attn_implementation=attn)
        generator.generate(prompts[:1], max_new_tokens=2)  # warm-up
        for threads in thread_counts:
            generator.num_threads = threads
            for batch in (1, args.batch):
                seconds, tokens = measure(generator, prompts, batch, args.max_new_tokens)
                rate = tokens / seconds
                baseline = baseline or rate
                rows.append((attn, threads or choose_threads(), batch, tokens, seconds, rate, rate / baseline))
                print(f"  done attn={attn} threads={threads} batch={batch}: {rate:.1f} tok/s", file=sys.stderr)
    print(f"\n{'attn':6} {'threads':>7} {'batch':>5} {'tokens':>6} {'seconds':>8} {'tok/s':>7} {'x base':>7}")
    for attn, threads, batch, tokens, seconds, rate, ratio in rows:
        print(f"{attn:6} {threads:7d} {batch:5d} {tokens:6d} {seconds:8.2f} {rate:7.1f} {ratio:7.2f}")
    print(f"(baseline: first row; load avg now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    sys.exit(main())
