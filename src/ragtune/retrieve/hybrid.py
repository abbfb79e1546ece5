"""Hybrid retrieval: dense and BM25 rankings fused by ranks (mode "hybrid") or by scores ("hybrid-convex").

hybrid, weighted reciprocal rank fusion (RRF; Cormack et al. 2009, with per-ranking weights):
    fused(d) = sum over rankings r of  w_r / (rrf_k + rank_r(d)),  rank 1-based;
hybrid-convex, a convex combination of min-max normalised scores (Bruch et al. 2023, "An analysis of fusion
functions for hybrid retrieval"), which keeps how far apart the scores are, not only their order:
    fused(d) = sum over rankings r of  w_r * (s_r(d) - min_r) / (max_r - min_r)  /  sum of w_r,
min and max over the ranking's candidates. A document absent from a ranking gets nothing from it (0, the
normalised minimum); a ranking of weight 0 is ignored entirely.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ragtune.config import RetrieveConfig
from ragtune.retrieve.base import Filters, SearchableIndex
from ragtune.retrieve.bm25 import BM25Retriever
from ragtune.retrieve.dense import DenseRetriever
from ragtune.types import Hit


def rrf_fuse(rankings: Sequence[Sequence[int]], weights: Sequence[float], rrf_k: int = 60) -> list[tuple[int, float]]:
    """Fuse ranked lists of ids into [(id, fused score)] best first.

    Ties break by the best (smallest) rank any list gave the id, then by the id itself, so fusion is
    deterministic.

    >>> rrf_fuse([[1, 2], [2, 3]], [1.0, 1.0], rrf_k=60)[0][0]
    2
    """
    if len(rankings) != len(weights):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    fused: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking, weight in zip(rankings, weights):
        if weight <= 0:  # a switched-off ranking contributes no candidates either
            continue
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (rrf_k + rank)
            best[item] = min(best.get(item, rank), rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], best[kv[0]], kv[0]))


def convex_fuse(
    rankings: Sequence[tuple[Sequence[Any], Sequence[float]]], weights: Sequence[float]
) -> list[tuple[Any, float]]:
    """Fuse (ids, scores) lists, each best first, into [(id, fused score in [0, 1])] best first: the weighted mean
    of each list's min-max normalised score (a list whose scores are all equal gives each of its ids 1).

    Ties break as in rrf_fuse: by the best rank any list gave the id, then by the id.

    >>> convex_fuse([([1, 2, 3], [0.9, 0.8, 0.1]), ([3, 1], [12.0, 2.0])], [1.0, 1.0])
    [(1, 0.5), (3, 0.5), (2, 0.4375)]
    """
    if len(rankings) != len(weights):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    total = sum(w for w in weights if w > 0)
    fused: dict[Any, float] = {}
    best: dict[Any, int] = {}
    for (ids, scores), weight in zip(rankings, weights):
        if weight <= 0 or not len(ids):  # a switched-off ranking contributes no candidates either
            continue
        values = [float(s) for s in scores]
        low, span = min(values), max(values) - min(values)
        for rank, (item, value) in enumerate(zip(ids, values), start=1):
            fused[item] = fused.get(item, 0.0) + weight / total * ((value - low) / span if span > 0 else 1.0)
            best[item] = min(best.get(item, rank), rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], best[kv[0]], kv[0]))


FUSIONS = ("rrf", "convex")  # how HybridRetriever fuses: mode "hybrid" and mode "hybrid-convex"


def check_fusion(fusion: str) -> str:
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
    return fusion


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _bm25_pool() -> ThreadPoolExecutor:
    """One worker thread that runs BM25 while the calling thread embeds the query (both release the GIL for
    most of their work: ONNX Runtime / torch and numpy), so hybrid costs ~max(dense, BM25), not their sum."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragtune-bm25")
        return _POOL


class HybridRetriever:
    """Dense + BM25, each to `candidates` deep (concurrently), fused by weighted RRF or (fusion "convex") by the
    convex combination of their normalised scores."""

    def __init__(self, index: SearchableIndex, config: RetrieveConfig = RetrieveConfig(), fusion: str = "rrf"):
        self.index = index
        self.config = config
        self.fusion = check_fusion(fusion)
        self.dense = DenseRetriever(index)
        self.bm25 = BM25Retriever(index)

    def retrieve(self, queries: list[str], k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        """Top-k fused hits per query; the score is the fused score."""
        depth = max(self.config.candidates, k)
        bm25_future = _bm25_pool().submit(self.bm25.search_rows, queries, depth, filters)
        try:
            state, dense_rows = self.dense.search_rows(queries, depth, filters)
        finally:
            state_b, bm25_rows = bm25_future.result()  # always joined, so no search outlives this call
        if state_b is not state:  # a reload landed between the two searches: redo on one state
            return self.retrieve(queries, k, filters)
        weights = (self.config.dense_weight, self.config.bm25_weight)
        out = []
        for (d_rows, d_scores), (b_rows, b_scores) in zip(dense_rows, bm25_rows):
            ranked = [(d_rows.tolist(), d_scores), (b_rows.tolist(), b_scores)]
            fused = (convex_fuse(ranked, weights) if self.fusion == "convex"
                     else rrf_fuse([rows for rows, _ in ranked], weights, self.config.rrf_k))[:k]
            out.append([Hit(chunk=state.chunks[row], score=score, rank=i) for i, (row, score) in enumerate(fused)])
        return out
