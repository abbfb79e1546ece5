"""Building a retriever by mode name, from a registry: dense, bm25, hybrid (rank fusion), hybrid-convex (score
fusion, ragtune.retrieve.hybrid), each of those four with "+rerank" (its hits reranked by the LLM's query
likelihood, ragtune.retrieve.rerank), the graph-local/-global/-hybrid modes
that ragtune.graph provides (registered on their first use, see ragtune.registry.RETRIEVAL_MODE_PROVIDERS: this
module never imports the graph), and whatever an extension adds with `register_retrieval_mode`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ragtune.config import RERANK_SUFFIX, RetrieveConfig, validation_message
from ragtune.errors import ConfigError
from ragtune.registry import RETRIEVAL_MODE_PROVIDERS, Registry
from ragtune.retrieve.base import Retriever, SearchableIndex

# the built-in modes
MODES = ("dense", "bm25", "hybrid", "hybrid-convex", "graph-local", "graph-global", "graph-hybrid")
# and those that rerank a built-in mode's hits with the LLM (ragtune.retrieve.rerank): RERANKED_MODES, below, each
# a built-in name + RERANK_SUFFIX

RetrieverFactory = Callable[[SearchableIndex, RetrieveConfig], Retriever]  # (index, config) -> Retriever
RETRIEVAL_MODES: Registry[RetrieverFactory] = Registry("retrieval mode", providers=RETRIEVAL_MODE_PROVIDERS)


def register_retrieval_mode(name: str, factory: RetrieverFactory) -> None:
    """Make `name` a retrieval mode (`--mode name`, RetrieveConfig(mode=name)); ConfigError if taken.

    >>> register_retrieval_mode("first-chunk", lambda index, config: MyRetriever(index))  # doctest: +SKIP
    """
    RETRIEVAL_MODES.register(name, factory)


def retrieval_modes() -> tuple[str, ...]:
    """Every registered mode name, built-ins first."""
    return RETRIEVAL_MODES.names()


def build_retriever(index: SearchableIndex, config: RetrieveConfig = RetrieveConfig()) -> Retriever:
    """The retriever for config.mode over index (a ragtune.index.Index); ConfigError for an unknown mode."""
    return RETRIEVAL_MODES.get(config.mode)(index, config)


def _dense(index: SearchableIndex, config: RetrieveConfig) -> Retriever:
    if getattr(index, "is_store", False):  # a database engine ranks (ragtune.retrieve.store)
        from ragtune.retrieve.store import StoreDenseRetriever

        return StoreDenseRetriever(index)
    from ragtune.retrieve.dense import DenseRetriever

    return DenseRetriever(index)


def _bm25(index: SearchableIndex, config: RetrieveConfig) -> Retriever:
    if getattr(index, "is_store", False):
        from ragtune.retrieve.store import StoreKeywordRetriever

        return StoreKeywordRetriever(index)
    from ragtune.retrieve.bm25 import BM25Retriever

    return BM25Retriever(index)


def _hybrid(index: SearchableIndex, config: RetrieveConfig) -> Retriever:
    return _fused(index, config, "rrf")


def _hybrid_convex(index: SearchableIndex, config: RetrieveConfig) -> Retriever:
    return _fused(index, config, "convex")


def _fused(index: SearchableIndex, config: RetrieveConfig, fusion: str) -> Retriever:
    if getattr(index, "is_store", False):
        from ragtune.retrieve.store import StoreHybridRetriever

        return StoreHybridRetriever(index, config, fusion)
    from ragtune.retrieve.hybrid import HybridRetriever

    return HybridRetriever(index, config, fusion)


def _reranked(base: RetrieverFactory) -> RetrieverFactory:
    def factory(index: SearchableIndex, config: RetrieveConfig) -> Retriever:
        from ragtune.retrieve.rerank import RerankingRetriever

        return RerankingRetriever(base(index, config), config)

    return factory


_BUILT_IN = (("dense", _dense), ("bm25", _bm25), ("hybrid", _hybrid), ("hybrid-convex", _hybrid_convex))
RERANKED_MODES = tuple(name + RERANK_SUFFIX for name, _ in _BUILT_IN)
for _name, _factory in _BUILT_IN:
    register_retrieval_mode(_name, _factory)
for _name, _factory in _BUILT_IN:  # after all four, so that the error line lists the plain modes first
    register_retrieval_mode(_name + RERANK_SUFFIX, _reranked(_factory))
del _name, _factory


def open_retriever(index: SearchableIndex, mode: str = "hybrid", **settings: Any) -> Retriever:
    """A Retriever over index for mode 'dense', 'bm25', 'hybrid', 'hybrid-convex' or 'graph-local'/'graph-global'/
    'graph-hybrid'; settings are RetrieveConfig fields.

    >>> open_retriever(index, "hybrid").retrieve(["how many days of leave?"], k=3)  # doctest: +SKIP
    """
    RETRIEVAL_MODES.get(mode)  # "unknown retrieval mode 'x': choose one of ..." for any unregistered name
    try:
        config = RetrieveConfig(mode=mode, **settings)
    except ValueError as exc:
        raise ConfigError(f"bad retriever settings for mode {mode!r}: {validation_message(exc)}") from None
    return build_retriever(index, config)
