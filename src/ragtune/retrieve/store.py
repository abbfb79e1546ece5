"""Retrieval over a store-backed index (ragtune.store.index.StoreIndex): the engine ranks and filters.

dense: the query embedding against the engine's vector index; bm25: the engine's full-text ranking (Milvus:
BM25; Postgres: ts_rank_cd); hybrid: both fused by RRF inside the engine where it can; hybrid-convex: both
rankings fetched, fused here by their normalised scores (ragtune.retrieve.hybrid.convex_fuse). Filters go to the
engine with the query, so they apply before the top-k.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ragtune.config import RetrieveConfig
from ragtune.retrieve.base import Filters, encode_queries
from ragtune.retrieve.hybrid import check_fusion, convex_fuse
from ragtune.types import Hit


def _embed(index: Any, queries: list[str]) -> np.ndarray:
    index.check_query_embedder()
    return np.asarray(encode_queries(index.embedder, list(queries)), dtype=np.float32)  # (nq, dim)


class StoreDenseRetriever:
    """Inner-product search in the engine's vector index."""

    def __init__(self, index: Any):
        self.index = index

    def retrieve(self, queries: list[str], k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        if not queries:
            return []
        return self.index.store.dense_search(_embed(self.index, queries), k, filters)


class StoreKeywordRetriever:
    """The engine's full-text ranking; chunks sharing no term with the query are not returned."""

    def __init__(self, index: Any):
        self.index = index

    def retrieve(self, queries: list[str], k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        if not queries:
            return []
        return self.index.store.keyword_search(list(queries), k, filters)


class StoreHybridRetriever:
    """Dense + full-text, each `candidates` deep, fused by weighted RRF in the engine, or (fusion "convex") here by
    the convex combination of their normalised scores; the score is the fused score."""

    def __init__(self, index: Any, config: RetrieveConfig = RetrieveConfig(), fusion: str = "rrf"):
        self.index = index
        self.config = config
        self.fusion = check_fusion(fusion)

    def retrieve(self, queries: list[str], k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        if not queries:
            return []
        c = self.config
        depth, weights = max(c.candidates, k), (c.dense_weight, c.bm25_weight)
        if self.fusion == "convex":  # a ranking of weight 0 is not fetched (it adds no candidates)
            store, none = self.index.store, [[] for _ in queries]
            dense = store.dense_search(_embed(self.index, queries), depth, filters) if weights[0] > 0 else none
            keyword = store.keyword_search(list(queries), depth, filters) if weights[1] > 0 else none
            return [convex_merge(d, kw, k, weights) for d, kw in zip(dense, keyword, strict=True)]
        return self.index.store.hybrid_search(
            list(queries), _embed(self.index, queries), k, filters, candidates=depth, rrf_k=c.rrf_k, weights=weights,
        )


def convex_merge(dense: list[Hit], keyword: list[Hit], k: int, weights: tuple[float, float]) -> list[Hit]:
    """Two hit lists (best first) fused by chunk id with convex_fuse: the top k, scored by the fused score."""
    chunks = {hit.chunk.chunk_id: hit.chunk for hits in (dense, keyword) for hit in hits}
    fused = convex_fuse([([h.chunk.chunk_id for h in hits], [h.score for h in hits]) for hits in (dense, keyword)],
                        weights)[:k]
    return [Hit(chunk=chunks[cid], score=score, rank=i) for i, (cid, score) in enumerate(fused)]
