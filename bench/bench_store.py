"""Index backends on SciFact: nDCG@10 per backend x mode (dense, keyword, hybrid), query p50/p95 (incl. query
embedding) and ingest chunks/s; then a run per server store with synthetic vectors showing how search p50 grows
with size (each stops growing after --synthetic-budget-s).

    scripts/services.sh up      # Milvus Lite on 127.0.0.1:19530 (and Postgres when the pg backend is merged)
    .venv/bin/python bench/bench_store.py --milvus milvus://127.0.0.1:19530 [--postgres postgresql://...]
        [--embedder bundled|hash] [--synthetic 10000,100000] [--skip-scifact]

SciFact is embedded once (the cached folder index `ragtune evaluate`/bench_retrieval build under the ragtune
cache); every backend then ingests the same documents through `Index.add_documents` with an embedder that looks
the chunk vectors up (so "ingest chunks/s" is chunking + writing, the same work on every backend), while queries
are embedded for real. The folder index is the baseline every ratio is against. Keyword mode is each engine's
own full-text ranking: bm25s (folder), Milvus BM25 function, Postgres ts_rank_cd.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scifact"
MODES = ("dense", "bm25", "hybrid")


class LookupEmbedder:
    """The real embedder's vectors for texts already embedded (the cached SciFact index), real encoding otherwise."""

    def __init__(self, real, texts: list[str], vectors: np.ndarray):
        self.real = real
        self.model_id = real.model_id
        self.dim = real.dim
        self.row = {t: i for i, t in enumerate(texts)}
        self.vectors = vectors

    def encode(self, texts, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        rows = [self.row.get(t) for t in texts]
        out = np.zeros((len(rows), self.dim), np.float32)
        known = [i for i, r in enumerate(rows) if r is not None]
        out[known] = self.vectors[np.asarray([rows[i] for i in known], dtype=np.int64)]
        missing = [i for i, r in enumerate(rows) if r is None]  # chunks the cached index cut differently
        if missing:
            out[missing] = self.real.encode([texts[i] for i in missing], batch_size=batch_size)
        return out


def scifact(args) -> list[tuple]:
    from ragtune.config import EmbedConfig, IndexConfig
    from ragtune.evaluate.retrieval import build_beir_index, evaluate_retrieval, load_beir
    from ragtune.index import Index
    from ragtune.index.embed import chunk_embed_text
    from ragtune.ingest import load_documents
    from ragtune.retrieve import open_retriever
    from ragtune.store import open_store, with_collection

    t0 = time.perf_counter()
    cached = build_beir_index(DATA, config=IndexConfig(embed=EmbedConfig(model=args.embedder)))
    state = cached.state
    print(f"SciFact: {len(cached.documents())} documents, {len(cached)} chunks, embedded ({args.embedder}) "
          f"in the cache ({time.perf_counter() - t0:.0f} s to open/build)", flush=True)
    lookup = LookupEmbedder(cached.embedder, [chunk_embed_text(c.title, c.text) for c in state.chunks], state.vectors)
    docs = load_documents([DATA / "corpus.jsonl"]).documents
    data = load_beir(DATA, "test")
    queries = dict(list(data.queries.items())[: args.queries]) if args.queries else data.queries
    qrels = {q: data.qrels[q] for q in queries}

    backends = [("folder", None)]
    if args.milvus:
        backends.append(("milvus", with_collection(args.milvus, f"bench_scifact_{os.getpid()}")))
    if args.postgres:
        backends.append(("postgres", with_collection(args.postgres, f"bench_scifact_{os.getpid()}")))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, uri in backends:
            location = uri or str(Path(tmp) / "folder")
            try:
                index = Index.open_or_create(location, cached.config, embedder=lookup)
                start = time.perf_counter()
                index.add_documents(docs)
                ingest_s = time.perf_counter() - start
                n_chunks = len(index)
                print(f"{name}: ingested {n_chunks} chunks in {ingest_s:.1f} s", flush=True)
                for mode in MODES:
                    ev = evaluate_retrieval(open_retriever(index, mode), queries, qrels, mode=mode, timed=True)
                    rows.append((name, mode, ev.metrics["ndcg@10"], ev.latency_ms["p50"], ev.latency_ms["p95"],
                                 n_chunks / ingest_s))
                    print(f"  {mode:7s} nDCG@10 {ev.metrics['ndcg@10']:.4f}  p50 {ev.latency_ms['p50']:.1f} ms  "
                          f"p95 {ev.latency_ms['p95']:.1f} ms", flush=True)
            finally:
                if uri:
                    store = open_store(uri)
                    store.drop()
                    store.close()
    return rows


class FolderSynthetic:
    """The folder index behind the few store calls the synthetic run makes (a commit per batch, exact or HNSW
    dense search over the state's vectors, as the folder retriever does)."""

    def __init__(self, path: str, dim: int):
        from ragtune.config import EmbedConfig, IndexConfig
        from ragtune.index import HashEmbedder, Index

        self.path = path
        self.config = IndexConfig(embed=EmbedConfig(model=f"hash:{dim}"))
        self.index = Index.open_or_create(path, self.config, embedder=HashEmbedder(dim))

    def write_config(self, config) -> None:
        pass

    def replace_documents(self, docs, chunks, vectors) -> None:
        from ragtune.types import Document

        self.index.add_documents([Document(c.doc_id, c.text) for c in chunks],
                                 precomputed={c.doc_id: ([c], v[None, :]) for c, v in zip(chunks, vectors)})

    def dense_search(self, queries: np.ndarray, k: int):
        return self.index.state.dense(self.config).search(queries, k)

    def drop(self) -> None:
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)

    def close(self) -> None:
        pass


def synthetic(args, base_uri: str) -> list[tuple]:
    """A store's dense search p50 as the collection grows (random unit vectors, dimension 384, k=10)."""
    from ragtune.store import StoreConfig, StoredDocument, open_store, with_collection
    from ragtune.types import Chunk

    if base_uri == "folder":
        store = FolderSynthetic(tempfile.mkdtemp(prefix="bench_synthetic_"), 384)
    else:
        store = open_store(with_collection(base_uri, f"bench_synthetic_{os.getpid()}"))
    rng = np.random.default_rng(0)
    dim, batch = 384, 2000
    store.write_config(StoreConfig("synthetic", dim, {}))
    queries = rng.standard_normal((args.synthetic_queries, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    out = []
    size = 0
    deadline = time.monotonic() + args.synthetic_budget_s
    try:
        for target in sorted(int(s) for s in args.synthetic.split(",")):
            start = time.perf_counter()
            while size < target:
                n = min(batch, target - size)
                vectors = rng.standard_normal((n, dim)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                docs = [StoredDocument(f"s{size + i}", f"h{size + i}", n_chunks=1) for i in range(n)]
                chunks = [Chunk(f"s{size + i}#0", f"s{size + i}", f"w{(size + i) % 997} w{(size + i) % 991}")
                          for i in range(n)]
                store.replace_documents(docs, chunks, vectors)
                size += n
                if time.monotonic() > deadline:
                    print(f"synthetic: budget of {args.synthetic_budget_s} s spent at {size} rows; stopping", flush=True)
                    break
            if hasattr(store, "flush"):
                store.flush()  # Milvus: seal the rows (StoreIndex does this once per ingest)
            insert_s = time.perf_counter() - start
            store.dense_search(queries[:1], 10)  # warm-up (and a load after the inserts)
            lat = []
            for q in queries:
                t = time.perf_counter()
                store.dense_search(q[None, :], 10)
                lat.append((time.perf_counter() - t) * 1000)
            out.append((size, float(np.percentile(lat, 50)), float(np.percentile(lat, 95)), (size - (out[-1][0] if out else 0)) / insert_s))
            print(f"synthetic {size:>8d} rows: dense p50 {out[-1][1]:.1f} ms, p95 {out[-1][2]:.1f} ms, "
                  f"insert {out[-1][3]:.0f} rows/s", flush=True)
            if time.monotonic() > deadline:
                break
    finally:
        store.drop()
        store.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--milvus", default=os.environ.get("RAGTUNE_TEST_MILVUS"), help="Milvus base URI")
    ap.add_argument("--postgres", default=os.environ.get("RAGTUNE_TEST_POSTGRES"), help="PostgreSQL base URI")
    ap.add_argument("--embedder", default="bundled", help="'hash' for a quick run without the embedding cost")
    ap.add_argument("--queries", type=int, default=0, help="use only the first N test queries (0: all 300)")
    ap.add_argument("--synthetic", default="10000,100000", help="collection sizes for the synthetic run ('' to skip)")
    ap.add_argument("--synthetic-backends", default="folder,milvus,postgresql", help="which stores grow synthetically")
    ap.add_argument("--synthetic-queries", type=int, default=100)
    ap.add_argument("--synthetic-budget-s", type=float, default=300.0, help="stop growing after this long")
    ap.add_argument("--skip-scifact", action="store_true")
    args = ap.parse_args()
    from ragtune.progress import set_progress

    set_progress(False)
    if not args.skip_scifact:
        if not DATA.is_dir():
            print(f"SciFact not found at {DATA}; skipping the quality table")
        else:
            rows = scifact(args)
            base = {(m): (nd, p50) for b, m, nd, p50, _, _ in rows if b == "folder"}
            print("\n| backend | mode | nDCG@10 | Δ vs folder | p50 ms | p95 ms | p50 × folder | ingest chunks/s |")
            print("|---|---|---|---|---|---|---|---|")
            for b, m, nd, p50, p95, rate in rows:
                print(f"| {b} | {m} | {nd:.4f} | {nd - base[m][0]:+.4f} | {p50:.1f} | {p95:.1f} | "
                      f"{p50 / base[m][1]:.1f}× | {rate:.0f} |")
    for name, base_uri in (("folder", "folder"), ("Milvus", args.milvus), ("PostgreSQL", args.postgres)):
        if not args.synthetic or not base_uri or name.lower() not in args.synthetic_backends:
            continue
        print(f"\n{name}: synthetic run", flush=True)
        points = synthetic(args, base_uri)
        print(f"\n| {name} rows | dense p50 ms | p95 ms | insert rows/s | p50 × smallest |")
        print("|---|---|---|---|---|")
        for size, p50, p95, rate in points:
            print(f"| {size} | {p50:.1f} | {p95:.1f} | {rate:.0f} | {p50 / points[0][1]:.2f}× |")
    return 0


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    sys.exit(main())
