"""Prompt layout of retrieved sources vs answer quality on SQuAD: how many sources, in which order, with or
without worked examples. The untuned 135M model reads poorly, so the layout decides much of the rag arm's score.

    .venv/bin/python bench/bench_rag_layout.py [--questions 120] [--variants k3,k1,k3_best_last,...] [--adapter DIR]

The corpus and questions are bench_compare_squad.py's (first 4 articles of SQuAD v1.1 dev, questions sampled
with seed 0); its index is built here if missing. Every variant answers the same questions with the same
retrieved hits (hybrid), greedy, 32 new tokens; answers are parsed and condensed as `ragtune compare` does and
scored with SQuAD token F1 / exact match. The first variant is the baseline the others are compared with.

Variants: kN (top-N, best source first), kN_best_last (top-N listed with the best source last, next to the
question), kN_few / kN_best_last_few (the same after three worked examples from bench_prompts.FEW_SHOT),
kN_best_last_sentM[_few] (each passage cut to its sentences among the M closest to the question, MiniLM
cosine, ragtune.generate.compress; the figures below were measured with an earlier copy of it that split
sentences only before a capital letter or digit), closed / closed_few (no sources). ragtune's "guided" prompt style is k3_best_last_sent3_few for RAG
and closed_few closed-book; "plain" is k3_best_last / closed.

Measured (120 questions, untuned model): k3 0.102, k1 0.164, k3_best_last 0.157, k1_few 0.217,
k3_best_last_few 0.132, k3_best_last_sent3 0.130, k3_best_last_sent3_few 0.218 (EM 0.150),
k3_best_last_sent2_few 0.216, closed 0.052, closed_few 0.070.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_compare_squad import SQUAD, prepare  # noqa: E402
from bench_prompts import FEW_SHOT  # noqa: E402

_VARIANT = re.compile(r"^k(\d+)(_best_last)?(?:_sent(\d+))?(_few)?$")
def variant_messages(name: str, question: str, hits: list) -> list[dict[str, str]]:
    from ragtune.generate.prompts import SYSTEM_RAG

    if name in ("closed", "closed_few"):
        from ragtune.generate.prompts import SYSTEM_CLOSED

        messages = [{"role": "system", "content": SYSTEM_CLOSED}]
        if name == "closed_few":
            for _, q, a in FEW_SHOT:
                messages += [{"role": "user", "content": f"Question: {q}"},
                             {"role": "assistant", "content": a.replace(" [1]", "")}]
        return messages + [{"role": "user", "content": f"Question: {question.strip()}"}]
    match = _VARIANT.match(name)
    if not match:
        raise SystemExit(f"unknown variant {name!r}: expected kN, kN_best_last, kN_few or kN_best_last_few")
    k, best_last, few = int(match.group(1)), bool(match.group(2)), bool(match.group(4))
    texts = [hit.chunk.text[:1500].strip() for hit in hits[:k]]
    if match.group(3):
        from ragtune.generate.compress import compress_hits
        from ragtune.index import get_embedder

        cut = compress_hits([question], [hits[:k]], int(match.group(3)), get_embedder())[0]
        texts = [hit.chunk.text for hit in cut]
    numbered = [(n, hit, text) for n, (hit, text) in enumerate(zip(hits[:k], texts), start=1) if text]
    if best_last:
        numbered.reverse()
    sources = "\n\n".join(
        f"[{n}] {hit.chunk.title + ': ' if hit.chunk.title else ''}{text}" for n, hit, text in numbered
    )
    messages = [{"role": "system", "content": SYSTEM_RAG}]
    if few:
        for source, q, a in FEW_SHOT:
            messages += [{"role": "user", "content": f"Sources:\n{source}\n\nQuestion: {q}"},
                         {"role": "assistant", "content": a}]
    return messages + [{"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: {question.strip()}"}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=120)
    parser.add_argument("--variants", default="k3,k1,k2,k3_best_last,k1_few,k3_few,k3_best_last_few")
    parser.add_argument("--adapter", default=None, help="a LoRA adapter (e.g. the RAFT one) instead of the base model")
    parser.add_argument("--work", default="runs/squad-bench-work")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not SQUAD.is_file():
        print(f"SQuAD data not found at {SQUAD}; nothing to measure.")
        return 0

    from ragtune.config import GenerateConfig, RetrieveConfig
    from ragtune.evaluate.answer_metrics import exact_match, f1
    from ragtune.generate import load_generator
    from ragtune.generate.prompts import condense_answer, parse_answer
    from ragtune.retrieve import build_retriever

    index, questions_file, _ = prepare(Path(args.work), 4, 200, args.seed)
    rows = [json.loads(line) for line in questions_file.read_text(encoding="utf-8").splitlines()][: args.questions]
    questions = [r["question"] for r in rows]
    hits = build_retriever(index, RetrieveConfig(mode="hybrid")).retrieve(questions, k=5)
    for k in (1, 2, 3):
        share = sum(any(h.chunk.doc_id == r["doc_id"] for h in hs[:k]) for r, hs in zip(rows, hits)) / len(rows)
        print(f"gold paragraph in top-{k}: {share:.2f}")

    generator = load_generator(GenerateConfig(max_new_tokens=32, stop_at_answer_line=True, adapter=args.adapter))
    results = []
    for name in args.variants.split(","):
        messages = [variant_messages(name, q, h) for q, h in zip(questions, hits)]
        start = time.perf_counter()
        outputs = []
        for i in range(0, len(messages), 8):
            outputs += generator.generate(messages[i : i + 8], max_new_tokens=32)
        seconds = time.perf_counter() - start
        answers = [condense_answer(parse_answer(o.text).answer, q) for o, q in zip(outputs, questions)]
        score_f1 = sum(f1(a, r["answers"]) for a, r in zip(answers, rows)) / len(rows)
        score_em = sum(exact_match(a, r["answers"]) for a, r in zip(answers, rows)) / len(rows)
        prompt_tokens = sum(o.prompt_tokens for o in outputs) / len(outputs)
        results.append((name, score_f1, score_em, prompt_tokens, seconds))
        print(f"{name:18} F1 {score_f1:.3f}  EM {score_em:.3f}  prompt {prompt_tokens:.0f} tok  {seconds:.0f}s", flush=True)

    base_f1 = results[0][1]
    print(f"\n{len(rows)} SQuAD questions, {'adapter ' + args.adapter if args.adapter else 'untuned model'}; "
          f"baseline {results[0][0]}")
    print(f"{'variant':18} {'F1':>6} {'EM':>6} {'ΔF1':>7} {'prompt tok':>10}")
    for name, score_f1, score_em, prompt_tokens, _ in results:
        print(f"{name:18} {score_f1:6.3f} {score_em:6.3f} {score_f1 - base_f1:+7.3f} {prompt_tokens:10.0f}")
    return 0


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    sys.exit(main())
