"""The Retriever contract (batch of queries in, ranked hits out) and what a retriever needs from an index.

`SearchableIndex` lists exactly what the built-in retrievers read from an index (ragtune.index.Index is one):
its config, the committed state — chunks in row order, a metadata row mask, a dense and a BM25 ranking over the
rows — and the embedder that encodes queries. It is the retrievers' view, not a storage API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ragtune.config import IndexConfig
from ragtune.types import Chunk, Embedder, Hit

if TYPE_CHECKING:  # numpy stays unimported until a search runs (`ragtune --help` imports this module)
    import numpy as np

# {"field": value} or {"field": [v1, v2]}, matched against chunk.metadata plus "doc_id" and "source".
Filters = Mapping[str, Any]


# Per query, (rows, scores) best first: the chunk rows of the state and their scores, as numpy arrays.
RowRanking = list[tuple["np.ndarray", "np.ndarray"]]


class RowMask(Protocol):
    """Metadata filters → the rows they admit."""

    def mask(self, filters: Filters | None) -> np.ndarray | None:
        """(n_rows,) bool of rows matching every filter field, or None when there is no filter."""
        ...


class VectorSearch(Protocol):
    def search(self, queries: np.ndarray, k: int, mask: np.ndarray | None = None) -> RowRanking:
        """Top-k rows by inner product for each (n_queries, dim) query vector, only among `mask` rows."""
        ...


class LexicalSearch(Protocol):
    def search(self, queries: list[str], k: int, mask: np.ndarray | None = None) -> RowRanking:
        """Top-k rows by BM25 for each query text (rows sharing no term left out), only among `mask` rows."""
        ...


class SearchState(Protocol):
    """One committed, immutable view of the index: everything in it is addressed by row."""

    chunks: Sequence[Chunk]  # row -> chunk
    row_of: Mapping[str, int]  # chunk_id -> row

    def metadata_index(self) -> RowMask: ...

    def dense(self, config: IndexConfig) -> VectorSearch: ...

    def bm25(self, config: IndexConfig) -> LexicalSearch: ...


class SearchableIndex(Protocol):
    """What retrievers use of an index (ragtune.index.Index satisfies it). Not runtime-checkable on purpose: an
    isinstance check would read `embedder`, which loads the model."""

    config: IndexConfig

    @property
    def state(self) -> SearchState:
        """The current committed state; read it once per search so every ranking sees the same rows."""
        ...

    @property
    def embedder(self) -> Embedder:
        """Encodes queries into the vector space of the index."""
        ...


@runtime_checkable
class Retriever(Protocol):
    """Anything that ranks chunks for queries. Filters are applied before ranking, never after a top-k."""

    def retrieve(self, queries: list[str], k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        """For each query, up to k hits best first (rank 0 = best)."""
        ...


def retrieve_one(retriever: Retriever, query: str, k: int = 10, filters: Filters | None = None) -> list[Hit]:
    """Single-query convenience wrapper around `retriever.retrieve`."""
    return retriever.retrieve([query], k=k, filters=filters)[0]


def encode_queries(embedder: Any, queries: list[str]) -> Any:
    """The queries' vectors through the embedder's `encode_queries` when it has one (an int8 embedder embeds each
    alone there, so a question retrieves the same asked alone or in a batch), else its `encode`."""
    encode = getattr(embedder, "encode_queries", None) or embedder.encode
    return encode(queries)
