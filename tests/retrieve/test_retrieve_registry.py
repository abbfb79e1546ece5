"""Retrieval modes come from a registry: built-ins are registered, duplicates are refused, an extension's mode works."""

from __future__ import annotations

import pytest

from ragtune.config import EmbedConfig, IndexConfig, RetrieveConfig
from ragtune.errors import ConfigError
from ragtune.index import Index
from ragtune.registry import Registry
from ragtune.retrieve import MODES, RERANKED_MODES, build_retriever, open_retriever, register_retrieval_mode, retrieval_modes
from ragtune.retrieve.factory import RETRIEVAL_MODES
from ragtune.types import Document, Hit


@pytest.fixture()
def own_registry(monkeypatch):
    """Registrations made by a test vanish after it."""
    monkeypatch.setattr(RETRIEVAL_MODES, "_factories", dict(RETRIEVAL_MODES._factories))


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    index = Index.create(tmp_path_factory.mktemp("ix") / "ix", IndexConfig(embed=EmbedConfig(model="hash:64")))
    index.add_documents([Document("cow", "The cow eats grass.", title="Cow"), Document("vpn", "Use the VPN.", title="VPN")])
    return index


def test_builtin_modes_are_registered():
    built_in = MODES + RERANKED_MODES
    assert set(retrieval_modes()[: len(built_in)]) == set(built_in)  # before any an extension adds


def test_duplicate_mode_is_refused(own_registry):
    with pytest.raises(ConfigError, match="'bm25' is already registered"):
        register_retrieval_mode("bm25", lambda index, config: None)
    register_retrieval_mode("mine", lambda index, config: None)
    with pytest.raises(ConfigError, match="'mine' is already registered"):
        register_retrieval_mode("mine", lambda index, config: None)


def test_unknown_mode_names_the_choices(index):
    with pytest.raises(ConfigError, match="unknown retrieval mode 'nope': choose one of dense, bm25, hybrid"):
        build_retriever(index, RetrieveConfig(mode="nope"))


class _LastDocument:
    """A toy retriever: always the chunk of the document whose id sorts last."""

    def __init__(self, index, k_default):
        self.index = index
        self.k_default = k_default

    def retrieve(self, queries, k=5, filters=None):
        bm25 = build_retriever(self.index, RetrieveConfig(mode="bm25"))
        hits = [sorted(h, key=lambda hit: hit.chunk.doc_id)[-1:] for h in bm25.retrieve(queries, k=10)]
        return hits


def test_registered_mode_is_usable_through_open_retriever(index, own_registry):
    register_retrieval_mode("last-doc", lambda ix, config: _LastDocument(ix, config.k))
    retriever = open_retriever(index, "last-doc", k=3)
    assert isinstance(retriever, _LastDocument) and retriever.k_default == 3
    hits = retriever.retrieve(["the cow and the vpn"])
    assert [h.chunk.doc_id for h in hits[0]] == ["vpn"] and isinstance(hits[0][0], Hit)


def test_registry_rejects_empty_names():
    with pytest.raises(ConfigError):
        Registry("thing").register("", lambda: None)


def test_graph_modes_open_from_retrieve_alone_without_importing_the_graph_first(tmp_path):
    """retrieve never imports graph; the registry imports the graph's factory on the first use of a graph mode, so
    every caller of open_retriever (CLI search/ask, serve, eval retrieval, compare, train) gets graph-hybrid."""
    import subprocess
    import sys

    script = f"""
import sys
from ragtune.config import EmbedConfig, IndexConfig
from ragtune.index import Index
from ragtune.retrieve import open_retriever, retrieval_modes
from ragtune.types import Document
index = Index.create({str(tmp_path / "ix")!r}, IndexConfig(embed=EmbedConfig(model="hash:64")))
index.add_documents([Document("cow", "The cow Bessie eats grass.", title="Cow"), Document("vpn", "Use the VPN.")])
assert "ragtune.graph.retrieve" not in sys.modules, "imported too early"
assert {{"graph-local", "graph-global", "graph-hybrid"}} <= set(retrieval_modes())
retriever = open_retriever(index, "graph-hybrid")
print(type(retriever).__module__, type(retriever).__name__, retriever.retrieve(["what does Bessie eat?"], k=1)[0][0].chunk.doc_id)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ragtune.graph.retrieve", "GraphRetriever", "cow"]


def test_every_provided_mode_resolves_to_a_factory(index, own_registry):
    from ragtune.registry import RETRIEVAL_MODE_PROVIDERS

    for mode in RETRIEVAL_MODE_PROVIDERS:
        assert mode in RETRIEVAL_MODES
        retriever = build_retriever(index, RetrieveConfig(mode=mode))
        assert retriever.mode == mode and mode in RETRIEVAL_MODES._factories
    with pytest.raises(ConfigError, match="'graph-local' is already registered"):
        register_retrieval_mode("graph-local", lambda index, config: None)


def test_index_has_what_retrievers_use(index):
    """ragtune.index.Index provides the SearchableIndex members (checked on the class and its state: an
    isinstance check on the protocol would load the embedder)."""
    from ragtune.index.state import IndexState
    from ragtune.retrieve.base import SearchState

    assert isinstance(Index.state, property) and isinstance(Index.embedder, property)
    assert isinstance(index.config, IndexConfig)
    state = index.state
    assert isinstance(state, IndexState) and len(state.chunks) == 2 and state.row_of[state.chunks[1].chunk_id] == 1
    for name in ("metadata_index", "dense", "bm25"):
        assert hasattr(SearchState, name) and callable(getattr(state, name))


def test_mode_names_keep_their_order_whatever_was_used_first():
    """The graph modes are provided lazily; using one first must not reorder the names in error messages."""
    shapes = Registry("shape", providers={"b-late": "json:dumps", "a-late": "json:loads"})
    shapes.register("square", lambda: None)
    before = shapes.names()
    shapes.get("a-late")  # imports its provider and registers it
    assert shapes.names() == before == ("square", "b-late", "a-late")
