"""The Retriever contract: batch of queries in, ranked hits out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ragtune.types import Hit

# {"field": value} or {"field": [v1, v2]}, matched against chunk.metadata plus "doc_id" and "source".
Filters = Mapping[str, Any]


@runtime_checkable
class Retriever(Protocol):
    """Anything that ranks chunks for queries. Filters are applied before ranking, never after a top-k."""

    def retrieve(self, queries: list[str], k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        """For each query, up to k hits best first (rank 0 = best)."""
        ...


def retrieve_one(retriever: Retriever, query: str, k: int = 10, filters: Filters | None = None) -> list[Hit]:
    """Single-query convenience wrapper around `retriever.retrieve`."""
    return retriever.retrieve([query], k=k, filters=filters)[0]
