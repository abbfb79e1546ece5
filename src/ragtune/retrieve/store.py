"""Retrieval over a store-backed index (ragtune.store.index.StoreIndex): the engine ranks and filters.

dense: the query embedding against the engine's vector index; bm25: the engine's full-text ranking (Milvus:
BM25; Postgres: ts_rank_cd); hybrid: both fused by RRF inside the engine where it can. Filters go to the
engine with the query, so they apply before the top-k.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ragtune.config import RetrieveConfig
from ragtune.retrieve.base import Filters
from ragtune.types import Hit


def _embed(index: Any, queries: list[str]) -> np.ndarray:
    index.check_query_embedder()
    return np.asarray(index.embedder.encode(list(queries)), dtype=np.float32)  # (nq, dim)


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
    """Dense + full-text, each `candidates` deep, fused by weighted RRF (the score is the fused score)."""

    def __init__(self, index: Any, config: RetrieveConfig = RetrieveConfig()):
        self.index = index
        self.config = config

    def retrieve(self, queries: list[str], k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        if not queries:
            return []
        c = self.config
        return self.index.store.hybrid_search(
            list(queries), _embed(self.index, queries), k, filters,
            candidates=max(c.candidates, k), rrf_k=c.rrf_k, weights=(c.dense_weight, c.bm25_weight),
        )
