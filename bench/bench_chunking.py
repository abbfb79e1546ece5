"""Chunking on BEIR SciFact (5,183 abstracts): load + chunk time, and chunk quality against fixed token windows.

Baseline, measured in the same run: fixed windows of `chunk_tokens` tokens every `chunk_tokens - overlap`
tokens (what a plain token splitter does), cut from one batched tokenizer pass. Quality figures: how many
chunks end at a sentence end (a cut in mid-sentence splits a fact across two chunks), token fill and the
largest chunk as recounted by the tokenizer. Also: counting sentence tokens in batches vs one call each.

    .venv/bin/python bench/bench_chunking.py [--docs 5183] [--chunk-tokens 200] [--overlap 32]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scifact" / "corpus.jsonl"
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


def fixed_windows(docs, tokenizer, size: int, overlap: int) -> list[str]:
    """The baseline splitter: windows of `size` tokens every `size - overlap` tokens, cut by token offsets."""
    encodings = tokenizer._tokenizer.encode_batch([d.text for d in docs], add_special_tokens=False)
    chunks = []
    for doc, enc in zip(docs, encodings, strict=True):
        offsets = enc.offsets
        for start in range(0, max(1, len(offsets)), size - overlap):
            window = offsets[start : start + size]
            if window:
                chunks.append(doc.text[window[0][0] : window[-1][1]])
            if start + size >= len(offsets):
                break
    return chunks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5183)
    parser.add_argument("--chunk-tokens", type=int, default=200)
    parser.add_argument("--overlap", type=int, default=32)
    args = parser.parse_args()
    if not CORPUS.is_file():
        print(f"SciFact corpus not found at {CORPUS}; nothing to measure.")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ragtune.config import ChunkConfig
    from ragtune.ingest import chunk_documents, load_documents, load_tokenizer, split_blocks
    from ragtune.progress import set_progress

    set_progress(False)
    tokenizer = load_tokenizer()
    config = ChunkConfig(chunk_tokens=args.chunk_tokens, overlap_tokens=args.overlap)

    t0 = time.perf_counter()
    docs = load_documents([CORPUS]).documents[: args.docs]
    load_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    ours = [c.text for c in chunk_documents(docs, config, tokenizer)]
    ours_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    base = fixed_windows(docs, tokenizer, config.chunk_tokens, config.overlap_tokens)
    base_s = time.perf_counter() - t0

    sentences = [s for d in docs[:1000] for b in split_blocks(d.text) for s in b.sentences]
    t0 = time.perf_counter()
    tokenizer.count_batch(sentences)
    batch_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in sentences:
        tokenizer.count(s)
    single_s = time.perf_counter() - t0

    def row(name: str, texts: list[str], seconds: float) -> str:
        counts = tokenizer.count_batch(texts)
        at_end = sum(1 for t in texts if _SENTENCE_END.search(t.rstrip())) / len(texts)
        return (
            f"{name:<28}{len(texts):>8}{statistics.mean(counts):>8.1f}{max(counts):>6}"
            f"{100 * at_end:>10.1f}%{seconds:>9.2f}{seconds / base_s:>8.2f}x"
        )

    print(
        f"SciFact: {len(docs)} documents loaded in {load_s:.2f} s; chunk_tokens={args.chunk_tokens} "
        f"overlap={args.overlap}; load avg {os.getloadavg()[0]:.1f}"
    )
    print(f"{'method':<28}{'chunks':>8}{'mean':>8}{'max':>6}{'sent.end':>11}{'seconds':>9}{'ratio':>9}")
    print(row("ragtune chunk_documents", ours, ours_s))
    print(row("fixed token windows", base, base_s))
    print(
        f"token counting, {len(sentences)} sentences: count_batch {batch_s:.2f} s, one call each {single_s:.2f} s "
        f"({single_s / max(batch_s, 1e-9):.1f}x)"
    )
    return 0


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    sys.exit(main())
