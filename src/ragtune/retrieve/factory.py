"""Building a retriever by mode name, from a registry: dense, bm25, hybrid, graph-local/-global/-hybrid, and
whatever an extension adds with `register_retrieval_mode`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ragtune.config import RetrieveConfig
from ragtune.errors import ConfigError
from ragtune.registry import Registry
from ragtune.retrieve.base import Retriever

MODES = ("dense", "bm25", "hybrid", "graph-local", "graph-global", "graph-hybrid")  # the built-in modes

RetrieverFactory = Callable[[Any, RetrieveConfig], Retriever]  # (index, config) -> Retriever
RETRIEVAL_MODES: Registry[RetrieverFactory] = Registry("retrieval mode")


def register_retrieval_mode(name: str, factory: RetrieverFactory) -> None:
    """Make `name` a retrieval mode (`--mode name`, RetrieveConfig(mode=name)); ConfigError if taken.

    >>> register_retrieval_mode("first-chunk", lambda index, config: MyRetriever(index))  # doctest: +SKIP
    """
    RETRIEVAL_MODES.register(name, factory)


def retrieval_modes() -> tuple[str, ...]:
    """Every registered mode name, built-ins first."""
    return RETRIEVAL_MODES.names()


def build_retriever(index: Any, config: RetrieveConfig = RetrieveConfig()) -> Retriever:
    """The retriever for config.mode over index (a ragtune.index.Index); ConfigError for an unknown mode."""
    return RETRIEVAL_MODES.get(config.mode)(index, config)


def _dense(index: Any, config: RetrieveConfig) -> Retriever:
    if getattr(index, "is_store", False):  # a database engine ranks (ragtune.retrieve.store)
        from ragtune.retrieve.store import StoreDenseRetriever

        return StoreDenseRetriever(index)
    from ragtune.retrieve.dense import DenseRetriever

    return DenseRetriever(index)


def _bm25(index: Any, config: RetrieveConfig) -> Retriever:
    if getattr(index, "is_store", False):
        from ragtune.retrieve.store import StoreKeywordRetriever

        return StoreKeywordRetriever(index)
    from ragtune.retrieve.bm25 import BM25Retriever

    return BM25Retriever(index)


def _hybrid(index: Any, config: RetrieveConfig) -> Retriever:
    if getattr(index, "is_store", False):
        from ragtune.retrieve.store import StoreHybridRetriever

        return StoreHybridRetriever(index, config)
    from ragtune.retrieve.hybrid import HybridRetriever

    return HybridRetriever(index, config)


def _graph(index: Any, config: RetrieveConfig) -> Retriever:
    from ragtune.graph.retrieve import GraphRetriever

    return GraphRetriever(index, config, mode=config.mode)


for _name, _factory in [("dense", _dense), ("bm25", _bm25), ("hybrid", _hybrid)] + [(m, _graph) for m in MODES[3:]]:
    register_retrieval_mode(_name, _factory)
del _name, _factory


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
