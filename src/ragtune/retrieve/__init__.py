"""Retrieval over an Index: dense, BM25, hybrid (RRF or convex fusion), each optionally reranked by the LLM
(ragtune.retrieve.rerank), behind one Retriever protocol, with metadata filters."""

from ragtune.retrieve.base import Filters, Retriever, SearchableIndex, retrieve_one
from ragtune.retrieve.factory import (
    MODES,
    RERANKED_MODES,
    build_retriever,
    open_retriever,
    register_retrieval_mode,
    retrieval_modes,
)
from ragtune.retrieve.hybrid import rrf_fuse

__all__ = [
    "MODES",
    "RERANKED_MODES",
    "Filters",
    "Retriever",
    "SearchableIndex",
    "build_retriever",
    "open_retriever",
    "register_retrieval_mode",
    "retrieval_modes",
    "retrieve_one",
    "rrf_fuse",
]
