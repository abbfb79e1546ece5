"""Hybrid retrieval: weighted reciprocal rank fusion (RRF) of dense and BM25 rankings.

fused(d) = sum over rankings r of  w_r / (rrf_k + rank_r(d)),  rank 1-based; a document absent from a
ranking contributes nothing from it (Cormack et al. 2009, with per-ranking weights); a ranking of
weight 0 is ignored entirely.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

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
    """Dense + BM25, each to `candidates` deep (concurrently), fused by weighted RRF."""

    def __init__(self, index: SearchableIndex, config: RetrieveConfig = RetrieveConfig()):
        self.index = index
        self.config = config
        self.dense = DenseRetriever(index)
        self.bm25 = BM25Retriever(index)

    def retrieve(self, queries: list[str], k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        """Top-k fused hits per query; the score is the fused RRF score."""
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
        for (d_rows, _), (b_rows, _) in zip(dense_rows, bm25_rows):
            fused = rrf_fuse([d_rows.tolist(), b_rows.tolist()], weights, self.config.rrf_k)[:k]
            out.append([Hit(chunk=state.chunks[row], score=score, rank=i) for i, (row, score) in enumerate(fused)])
        return out
