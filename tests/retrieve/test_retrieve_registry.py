"""Retrieval modes come from a registry: built-ins are registered, duplicates are refused, an extension's mode works."""

from __future__ import annotations

import pytest

from ragtune.config import EmbedConfig, IndexConfig, RetrieveConfig
from ragtune.errors import ConfigError
from ragtune.index import Index
from ragtune.registry import Registry
from ragtune.retrieve import MODES, build_retriever, open_retriever, register_retrieval_mode, retrieval_modes
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
    assert retrieval_modes()[: len(MODES)] == MODES


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
