"""SciFact retrieval quality and latency: ragtune bm25 / dense / hybrid / hybrid-convex vs LlamaIndex's figures.

    .venv/bin/python bench/bench_retrieval.py [--split test] [--chunk-tokens 200 --overlap 32] [--tune]
        [--windows 2] [--precision fp32]
    .venv/bin/python bench/bench_retrieval.py --modes hybrid-convex,hybrid-convex+rerank [--rerank-weight W]
        [--rerank-depth N]
    .venv/bin/python bench/bench_retrieval.py --modes hybrid-convex --tune-rerank 300 [--tune-rerank-depths 5,10,20]

Builds (or reuses) the index of ../shared/data/scifact under the ragtune cache, runs the split's queries one at
a time (after a warm-up) and prints nDCG@10, Recall@10/100, MRR@10 and p50/p95 latency per mode, beside the
peer's figures measured on this machine (LlamaIndex 0.14, same models; its hybrid is RRF). With --tune, also
scans hybrid RRF weights and hybrid-convex's dense weight on the TRAIN split (never on test) and prints the grids.
With --tune-rerank N, scores the first N TRAIN queries' hybrid-convex top 20 (the largest of --tune-rerank-depths)
with the LLM once (the "+rerank" modes, ragtune.retrieve.rerank) and prints nDCG@10 per depth and rerank weight.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scifact"
# LlamaIndex 0.14 on this machine, default config (brief / ../shared/peer): nDCG@10, p50 ms per query.
PEER = {"dense": (0.645, 100.0), "bm25": (0.687, 2.6), "hybrid": (0.717, 114.0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="test")
    ap.add_argument("--chunk-tokens", type=int, default=None)
    ap.add_argument("--overlap", type=int, default=None)
    ap.add_argument("--modes", default="bm25,dense,hybrid,hybrid-convex")
    ap.add_argument("--precision", choices=("fp32", "int8"), default=None,
                    help="index vectors (default: the model's, int8)")
    ap.add_argument("--windows", type=int, default=0,
                    help="sentence windows of the index (ragtune.index.windows; 0: none, the default)")
    ap.add_argument("--embedder", default="bundled", help="'hash' gives a BM25-only run without the embedding cost")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--tune", action="store_true",
                    help="grid over hybrid weights / rrf_k and the hybrid-convex dense weight on the train split")
    ap.add_argument("--tune-rerank", type=int, default=0, metavar="N",
                    help="grid over the +rerank weight on the first N train queries (hybrid-convex's top hits)")
    ap.add_argument("--rerank-weight", type=float, default=None, help="the +rerank modes' weight (default: ragtune's)")
    ap.add_argument("--tune-rerank-depths", default="20", help="with --tune-rerank: the depths tried, e.g. 5,10,20")
    ap.add_argument("--rerank-depth", type=int, default=None, help="hits the +rerank modes rerank (default: ragtune's)")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"SciFact data not found at {DATA}; nothing to measure.")
        return 0

    from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig, RetrieveConfig
    from ragtune.evaluate.retrieval import build_beir_index, evaluate_retrieval, load_beir
    from ragtune.retrieve import build_retriever

    chunk = ChunkConfig()
    if args.chunk_tokens:
        chunk = ChunkConfig(chunk_tokens=args.chunk_tokens, overlap_tokens=args.overlap if args.overlap is not None else 32)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    embed = EmbedConfig(model=args.embedder, windows=args.windows, precision=args.precision)
    config = IndexConfig(chunk=chunk, embed=embed)
    t0 = time.perf_counter()
    index = build_beir_index(DATA, config=config)
    print(f"index: {len(index.documents())} docs, {len(index)} chunks, chunk={chunk.model_dump()}, "
          f"ready in {time.perf_counter() - t0:.1f}s at {index.path}")
    # build the derived structures before timing (BM25 matrix, dense matrix, embedder)
    t0 = time.perf_counter()
    index.state.bm25(index.config)
    print(f"bm25 build over {len(index)} chunks: {time.perf_counter() - t0:.2f}s")
    index.embedder.encode(["warm up"])

    data = load_beir(DATA, args.split)
    rows = []
    settings = {name: value for name, value in (("rerank_weight", args.rerank_weight),
                                                ("rerank_depth", args.rerank_depth)) if value is not None}
    for mode in filter(None, args.modes.split(",")):
        retriever = build_retriever(index, RetrieveConfig(mode=mode, **settings))
        result = evaluate_retrieval(retriever, data.queries, data.qrels, mode=mode, timed=True)
        rows.append(result)
        m = result.metrics
        print(f"  {mode}: ndcg@10 {m['ndcg@10']:.4f}  p50 {result.latency_ms['p50']:.1f} ms", flush=True)

    print(f"\nSciFact {args.split} ({len(data.qrels)} queries), doc score = max over chunks, BEIR definitions")
    header = f"{'mode':20} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7} {'p50 ms':>7} {'p95 ms':>7} | {'peer nDCG':>9} {'peer p50':>8} {'Δ nDCG':>7} {'speedup':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        m, lat = r.metrics, r.latency_ms
        peer = ""
        if r.mode in PEER:
            peer_ndcg, peer_p50 = PEER[r.mode]
            peer = f"{peer_ndcg:9.3f} {peer_p50:8.1f} {m['ndcg@10'] - peer_ndcg:+7.3f} {peer_p50 / lat['p50']:6.1f}x"
        print(f"{r.mode:20} {m['ndcg@10']:8.4f} {m['recall@10']:7.4f} {m['recall@100']:7.4f} {m['mrr@10']:7.4f} "
              f"{lat['p50']:7.2f} {lat['p95']:7.2f} | {peer or '(no peer figure)'}")

    if args.tune:
        tune_hybrid(index)
    if args.tune_rerank:
        tune_rerank(index, args.tune_rerank, tuple(int(d) for d in args.tune_rerank_depths.split(",")))
    return 0


def tune_rerank(index, n: int, depths: tuple[int, ...] = (20,)) -> None:
    """nDCG@10 on the first n TRAIN queries of hybrid-convex+rerank per depth and weight; each passage is scored
    by the LLM once per query (a caching scorer), so the grid costs one rerank pass at the largest depth."""
    from ragtune.config import RetrieveConfig
    from ragtune.evaluate.retrieval import evaluate_retrieval, load_beir
    from ragtune.retrieve import build_retriever
    from ragtune.retrieve.rerank import RerankingRetriever, load_scorer

    train = load_beir(DATA, "train")
    qids = sorted(train.qrels)[:n]
    queries, qrels = {q: train.queries[q] for q in qids}, {q: train.qrels[q] for q in qids}
    scorer, cache = load_scorer(RetrieveConfig().rerank_model), {}

    class Cached:
        def score(self, query, passages):
            missing = [p for p in dict.fromkeys(passages) if (query, p) not in cache]
            if missing:
                cache.update(((query, p), s) for p, s in zip(missing, scorer.score(query, missing)))
            return [cache[query, p] for p in passages]

    base = build_retriever(index, RetrieveConfig(mode="hybrid-convex"))
    for depth in sorted(depths, reverse=True):  # the deepest first: it scores every passage the others need
        t0 = time.perf_counter()
        cells = []
        for weight in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0):
            retriever = RerankingRetriever(base, RetrieveConfig(rerank_weight=weight, rerank_depth=depth),
                                           scorer=Cached())
            result = evaluate_retrieval(retriever, queries, qrels, mode=f"rerank w={weight}")
            cells.append(f"w={weight}: {result.metrics['ndcg@10']:.4f}")
            if weight == 0.0:
                t0 = time.perf_counter()
            else:
                print(f"  depth {depth} {cells[-1]}  ({time.perf_counter() - t0:.0f} s)", flush=True)
        print(f"\nhybrid-convex+rerank on TRAIN ({len(qids)} queries, depth {depth}), nDCG@10 "
              "per rerank weight (w=0.0: hybrid-convex):\n  " + "  ".join(cells), flush=True)


def tune_hybrid(index) -> None:
    """Grid over RRF k and the dense weight, and over hybrid-convex's dense weight, on the TRAIN split: both
    rankings are computed once, fused per cell."""
    from ragtune.evaluate.retrieval import hits_to_doc_scores, load_beir, retrieval_metrics
    from ragtune.retrieve.bm25 import BM25Retriever
    from ragtune.retrieve.dense import DenseRetriever
    from ragtune.retrieve.hybrid import convex_fuse, rrf_fuse
    from ragtune.types import Hit

    train = load_beir(DATA, "train")
    qids = list(train.queries)
    texts = [train.queries[q] for q in qids]
    state, dense = DenseRetriever(index).search_rows(texts, 200)  # the depth evaluate_retrieval's hybrid fuses
    _, bm25 = BM25Retriever(index).search_rows(texts, 200)

    def ndcg(fuse) -> str:
        """nDCG@10 on TRAIN of fuse(dense (rows, scores), bm25 (rows, scores)) -> [(row, score)] per query."""
        run = {qid: hits_to_doc_scores([Hit(state.chunks[r], s) for r, s in fuse(d, b)[:200]])
               for qid, d, b in zip(qids, dense, bm25)}
        return f"{retrieval_metrics(run, train.qrels)['ndcg@10']:.4f}"

    print(f"\nhybrid grid on TRAIN ({len(qids)} queries), nDCG@10 (bm25 weight 1.0):")
    for rrf_k in (10, 30, 60, 100):
        cells = [f"w={w}: " + ndcg(lambda d, b: rrf_fuse([d[0].tolist(), b[0].tolist()], [w, 1.0], rrf_k))
                 for w in (0.5, 0.75, 1.0, 1.25, 1.5)]
        print(f"  rrf_k={rrf_k:3d}  " + "  ".join(cells), flush=True)
    cells = [f"w={w}: " + ndcg(lambda d, b: convex_fuse([(d[0].tolist(), d[1]), (b[0].tolist(), b[1])],
                                                        [w, 1 - w]))
             for w in (0.3, 0.4, 0.5, 0.6, 0.7)]
    print("  hybrid-convex (dense weight w, bm25 1 - w)  " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    sys.exit(main())
