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


def open_retriever(index: Any, mode: str = "hybrid", **settings: Any) -> Retriever:
    """A Retriever over index for mode 'dense', 'bm25', 'hybrid' or 'graph-local'/'graph-global'/'graph-hybrid';
    settings are RetrieveConfig fields.

    >>> open_retriever(index, "hybrid").retrieve(["how many days of leave?"], k=3)  # doctest: +SKIP
    """
    try:
        config = RetrieveConfig(mode=mode, **settings)
    except ValueError as exc:
        raise ConfigError(f"bad retriever settings mode={mode!r} {settings}: {exc}") from exc
    return build_retriever(index, config)
