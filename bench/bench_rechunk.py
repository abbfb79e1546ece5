"""Chunk size in the settings search (issue #17): what building the re-chunked copies costs next to the index's own
build, how many chunk vectors the embedding cache saves, and that a resumed search rebuilds nothing.

The first N SciFact abstracts are ingested with the bundled embedder at the default chunking (200/32), then
re-chunked at 128 and 320 tokens as `ragtune tune` does (ragtune.workflows.chunk_indexes); the ratios are against
the own build measured in the same run.

    .venv/bin/python bench/bench_rechunk.py [--docs 300] [--corpus /work/shared/data/scifact/corpus.jsonl]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--corpus", default="/work/shared/data/scifact/corpus.jsonl")
    parser.add_argument("--sizes", default="128,320")
    args = parser.parse_args()

    from ragtune.index import Index
    from ragtune.index.rechunk import exact_documents
    from ragtune.ingest import load_documents
    from ragtune.workflows.chunk_indexes import ChunkIndexes

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = root / "corpus.jsonl"
        with open(args.corpus, encoding="utf-8") as fh:
            corpus.write_text("".join(line for _, line in zip(range(args.docs), fh)), encoding="utf-8")
        docs = load_documents([corpus]).documents
        t0 = time.perf_counter()
        index = Index.create(root / "index")
        index.add_documents(docs)
        own_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        exact_documents(index)
        print(f"{len(docs)} documents; own index (200/32): {len(index)} chunks, {own_s:.1f} s; documents read back "
              f"exactly in {time.perf_counter() - t0:.2f} s")
        chunks = ChunkIndexes.under(index, root / "search")
        print("| chunk tokens | chunks | build s | x own build | embedded | from cache |")
        print("|---|---|---|---|---|---|")
        for size in (int(s) for s in args.sizes.split(",")):
            embedded, hits = chunks.cache.embedded, chunks.cache.hits
            t0 = time.perf_counter()
            copy = chunks.get(size)
            seconds = time.perf_counter() - t0
            print(f"| {size} | {len(copy)} | {seconds:.1f} | {seconds / own_s:.2f} | {chunks.cache.embedded - embedded} "
                  f"| {chunks.cache.hits - hits} |")
        t0 = time.perf_counter()
        again = ChunkIndexes.under(index, root / "search")
        for size in (int(s) for s in args.sizes.split(",")):
            again.get(size)
        print(f"resumed search: copies reused in {time.perf_counter() - t0:.2f} s, {again.cache.embedded} embedded")


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    main()
