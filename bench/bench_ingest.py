"""Ingestion throughput: ragtune `Index.add_documents` (chunk + embed + atomic commit) vs bare
sentence-transformers `encode` of the very same chunk texts, in the same process, alternated to share the load.

    .venv/bin/python bench/bench_ingest.py [--docs 600] [--rounds 2]

Prints chunks/s for each and the ratio. ragtune ingests at the default precision (int8 since 2026-11-29: the
issue's goal is >= 2x the bare encode; `--precision fp32` for the PyTorch-equal path, whose goal was >= 0.9x).
The data is the first --docs abstracts of ../shared/data/scifact.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scifact"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--precision", choices=("int8", "fp32"), default=None, help="default: the index default (int8)")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"SciFact data not found at {DATA}; nothing to measure.")
        return 0

    from ragtune.config import EmbedConfig, IndexConfig
    from ragtune.index import Index, get_embedder
    from ragtune.index.embed import chunk_embed_text, with_precision
    from ragtune.ingest import chunk_documents, load_tokenizer
    from ragtune.progress import set_progress
    from ragtune.types import Document

    set_progress(False)
    docs = []
    with open(DATA / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            docs.append(Document(doc_id=str(rec["_id"]), text=rec["text"], title=rec.get("title", "")))
            if len(docs) >= args.docs:
                break
    config = with_precision(IndexConfig(embed=EmbedConfig(precision=args.precision)))
    chunks = chunk_documents(docs, config.chunk, load_tokenizer())
    texts = [chunk_embed_text(c.title, c.text) for c in chunks]
    embedder = get_embedder("bundled")
    st = embedder._st  # the same loaded SentenceTransformer: the baseline is its bare encode
    st.encode(texts[:64], batch_size=64, normalize_embeddings=True)  # warm-up

    bare, ours = [], []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        st.encode(texts, batch_size=config.embed.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        bare.append(time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            index = Index.create(Path(tmp) / "ix", config)
            t0 = time.perf_counter()
            stats = index.add_documents(docs)
            ours.append(time.perf_counter() - t0)
            assert stats.chunks_added == len(chunks), (stats, len(chunks))
        print(f"  round: bare {bare[-1]:.1f}s, ragtune {ours[-1]:.1f}s", flush=True)

    n = len(chunks)
    best_bare, best_ours = min(bare), min(ours)
    print(f"\nIngest of {len(docs)} SciFact docs -> {n} chunks (chunk_tokens={config.chunk.chunk_tokens}), "
          f"best of {args.rounds} rounds, load avg {os.getloadavg()[0]:.1f}")
    print(f"{'pipeline':48} {'seconds':>8} {'chunks/s':>9} {'ratio':>6}")
    print(f"{'bare SentenceTransformer.encode (same chunks)':48} {best_bare:8.2f} {n / best_bare:9.1f} {1.0:6.2f}")
    print(f"{f'ragtune Index.add_documents, {config.embed.precision} (chunk+embed+commit)':48} {best_ours:8.2f} {n / best_ours:9.1f} "
          f"{best_bare / best_ours:6.2f}")
    return 0


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    sys.exit(main())
