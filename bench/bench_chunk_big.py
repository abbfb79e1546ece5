"""One big text file: load + chunk time and peak memory (issue #12 item 11). Embedding is not run.

Generates a deterministic prose file (sentences of 6-20 words, paragraphs of 2-8 sentences, blank lines
between; `--no-paragraphs` writes it as one paragraph, `--no-sentences` without sentence punctuation),
then loads it as ragtune ingest does and chunks it with the bundled tokenizer. Peak RSS comes from
getrusage; run under `/usr/bin/time -v` for the whole process figure.

    .venv/bin/python bench/bench_chunk_big.py --mb 30 [--out /tmp/big.txt] [--no-paragraphs]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

WORDS = (
    "the of and to in is was for on that with as by at from his her an were are which this be or has had not "
    "first new also after its one their two who been they time year city world war river state people school "
    "music team season government system company area population national group history water early began "
    "policy leave employee manager salary office travel expense health insurance holiday remote contract"
).split()


def generate(path: Path, megabytes: float, paragraphs: bool, sentences: bool, seed: int = 0) -> int:
    rng = random.Random(seed)
    target = int(megabytes * 1024 * 1024)
    written = 0
    with open(path, "w", encoding="utf-8") as fh:
        while written < target:
            para = []
            for _ in range(rng.randint(2, 8)):
                words = [rng.choice(WORDS) for _ in range(rng.randint(6, 20))]
                words[0] = words[0].capitalize()
                para.append(" ".join(words) + ("." if sentences else ""))
            text = " ".join(para) + ("\n\n" if paragraphs else " ")
            fh.write(text)
            written += len(text)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/ragtune-big.txt"))
    parser.add_argument("--no-paragraphs", action="store_true")
    parser.add_argument("--no-sentences", action="store_true")
    args = parser.parse_args()

    from ragtune.config import ChunkConfig
    from ragtune.ingest import chunk_documents, load_documents, load_tokenizer
    from ragtune.progress import set_progress

    set_progress(False)
    size = generate(args.out, args.mb, not args.no_paragraphs, not args.no_sentences)
    tokenizer = load_tokenizer()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    docs = load_documents([args.out]).documents
    loaded = time.perf_counter()
    chunks = chunk_documents(docs, ChunkConfig(), tokenizer)
    done = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"file {args.out.name}: {size / 2**20:.1f} MB, {len(chunks)} chunks")
    print(f"load {loaded - start:.1f} s, chunk {done - loaded:.1f} s, total {done - start:.1f} s")
    print(f"peak RSS {peak:.0f} MB (after tokenizer load {base_rss:.0f} MB; {peak / max(size / 2**20, 1e-9):.1f}x the file)")
    return 0


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    sys.exit(main())
