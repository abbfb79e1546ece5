"""Lexical retrieval: bm25s scores over the index's chunk texts (title prepended)."""

from __future__ import annotations

from ragtune.retrieve.base import Filters, RowRanking, SearchableIndex, SearchState
from ragtune.retrieve.dense import hits_from_rows
from ragtune.types import Hit


class BM25Retriever:
    """BM25 (Lucene parameters by default, see BM25Config) over an Index's chunks."""

    def __init__(self, index: SearchableIndex):
        self.index = index

    def search_rows(self, queries: list[str], k: int, filters: Filters | None = None) -> tuple[SearchState, RowRanking]:
        """(state, [(rows, scores)] per query): the raw ranking, used by hybrid fusion."""
        state = self.index.state
        mask = state.metadata_index().mask(filters)
        return state, state.bm25(self.index.config).search(list(queries), k, mask)

    def retrieve(self, queries: list[str], k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        """Top-k chunks per query by BM25 score; chunks sharing no term with the query are not returned."""
        state, results = self.search_rows(queries, k, filters)
        return [hits_from_rows(state.chunks, rows, scores) for rows, scores in results]
