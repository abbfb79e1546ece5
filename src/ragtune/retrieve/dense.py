"""Dense retrieval: embed the queries, inner product against the index's normalised vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ragtune.retrieve.base import Filters, RowRanking, SearchableIndex, SearchState, encode_queries
from ragtune.types import Chunk, Hit

if TYPE_CHECKING:
    import numpy as np


def hits_from_rows(chunks: Sequence[Chunk], rows: np.ndarray, scores: np.ndarray) -> list[Hit]:
    return [Hit(chunk=chunks[int(r)], score=float(s), rank=i) for i, (r, s) in enumerate(zip(rows, scores))]


class DenseRetriever:
    """Cosine similarity search (exact or HNSW, see ragtune.index.dense) over an Index's chunks."""

    def __init__(self, index: SearchableIndex):
        self.index = index

    def search_rows(self, queries: list[str], k: int, filters: Filters | None = None) -> tuple[SearchState, RowRanking]:
        """(state, [(rows, scores)] per query): the raw ranking, used by hybrid fusion."""
        state = self.index.state
        mask = state.metadata_index().mask(filters)
        if not queries:
            return state, []
        vectors = encode_queries(self.index.embedder, list(queries))  # (nq, dim)
        return state, state.dense(self.index.config).search(vectors, k, mask)

    def retrieve(self, queries: list[str], k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        """Top-k chunks per query by cosine similarity."""
        state, results = self.search_rows(queries, k, filters)
        return [hits_from_rows(state.chunks, rows, scores) for rows, scores in results]
