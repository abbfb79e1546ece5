"""Building a retriever by mode name (a closed registry: dense, bm25, hybrid, graph-local/-global/-hybrid)."""

from __future__ import annotations

from typing import Any

from ragtune.config import RetrieveConfig
from ragtune.errors import ConfigError
from ragtune.retrieve.base import Retriever

MODES = ("dense", "bm25", "hybrid", "graph-local", "graph-global", "graph-hybrid")


def build_retriever(index: Any, config: RetrieveConfig = RetrieveConfig()) -> Retriever:
    """The retriever for config.mode over index (a ragtune.index.Index)."""
    from ragtune.retrieve.bm25 import BM25Retriever
    from ragtune.retrieve.dense import DenseRetriever
    from ragtune.retrieve.hybrid import HybridRetriever

    if config.mode == "dense":
        return DenseRetriever(index)
    if config.mode == "bm25":
        return BM25Retriever(index)
    if config.mode == "hybrid":
        return HybridRetriever(index, config)
    if config.mode.startswith("graph-"):
        from ragtune.graph.retrieve import GraphRetriever

        return GraphRetriever(index, config, mode=config.mode)
    raise ConfigError(f"unknown retrieval mode {config.mode!r}: choose one of {', '.join(MODES)}")
