"""One conformance suite over every index backend (folder, milvus, postgres): the Index API the rest of ragtune
uses behaves the same on each. Server backends are skipped unless RAGTUNE_TEST_MILVUS / RAGTUNE_TEST_POSTGRES
name a running server (see tests/store/conftest.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig
from ragtune.errors import ConfigError, InputError, NotBuiltError
from ragtune.index import HashEmbedder, Index
from ragtune.index.embed import with_precision
from ragtune.retrieve import open_retriever
from ragtune.store import ACCESS_FIELD, StoreConfig, StoredDocument, open_store
from ragtune.types import Chunk, Document

CONFIG = IndexConfig(embed=EmbedConfig(model="hash:64"), chunk=ChunkConfig(chunk_tokens=32, overlap_tokens=4))
MODES = ["dense", "bm25", "hybrid", "hybrid-convex"]


def open_index(location: str) -> Index:
    return Index.open_or_create(location, CONFIG, embedder=HashEmbedder(64))


def corpus() -> list[Document]:
    return [
        Document("cats.md", "Cats purr and sleep in the sun all afternoon.", "Cats", metadata={"topic": "pets", "year": 2020}),
        Document("boats.md", "Sailing boats cross the harbour at dawn.", "Boats", metadata={"topic": "sea", "year": 2021}),
        Document("hr.md", "Salary reviews happen every spring for all staff.", "HR", metadata={"groups": ["hr"]}),
        Document("eng.md", "Deploy the sensor firmware after the budget review.", "Eng", metadata={"groups": ["eng", "ops"]}),
    ]


def doc_ids(hits) -> list[str]:
    return [h.chunk.doc_id for h in hits]


# ---- the Index API on every backend -----------------------------------------------------------------------
def test_add_then_search_every_mode(location: str) -> None:
    index = open_index(location)
    stats = index.add_documents(corpus())
    assert (stats.added, stats.replaced, stats.unchanged) == (4, 0, 0)
    assert len(index) == 4
    assert sorted(d.doc_id for d in index.documents()) == ["boats.md", "cats.md", "eng.md", "hr.md"]
    for mode in MODES:
        hits = open_retriever(index, mode).retrieve(["sailing boats harbour"], k=2)[0]
        assert hits[0].chunk.doc_id == "boats.md", mode
        assert [h.rank for h in hits] == list(range(len(hits)))


def test_keyword_search_stems_and_drops_stopwords_like_the_folder_index(location: str) -> None:
    """bm25 ranks the terms the folder index's bm25s sees (stemmed, no stopwords) on every backend — on Milvus
    Lite, whose analyzer cannot stem, because the rows and queries are pre-analyzed."""
    index = open_index(location)
    index.add_documents(corpus())
    retriever = open_retriever(index, "bm25")
    assert doc_ids(retriever.retrieve(["purring cat sleeping"], k=1)[0]) == ["cats.md"]
    assert doc_ids(retriever.retrieve(["the sailed boat"], k=1)[0]) == ["boats.md"]
    assert retriever.retrieve(["the of and"], k=3)[0] == []  # stopwords only: no keyword match anywhere


def test_unchanged_documents_are_skipped_and_content_dedupe(location: str) -> None:
    index = open_index(location)
    index.add_documents(corpus())
    again = open_index(location).add_documents(corpus())
    assert (again.added, again.unchanged, again.chunks_added) == (0, 4, 0)
    twin = Document("copy-of-cats.md", corpus()[0].text, "Cats", metadata={"topic": "pets", "year": 2020})
    stats = index.add_documents([twin], dedupe_content=True)
    assert stats.same_content == (("copy-of-cats.md", "cats.md"),)
    assert len(index) == 4


def test_replace_on_change_keeps_only_the_new_version(location: str) -> None:
    index = open_index(location)
    index.add_documents(corpus())
    stats = index.add_documents([Document("cats.md", "Cats now chase laser pointers at night.", "Cats")])
    assert (stats.replaced, stats.chunks_removed) == (1, 1)
    assert len(index) == 4
    hits = open_retriever(index, "bm25").retrieve(["cats"], k=5)[0]
    assert [h.chunk.text for h in hits if h.chunk.doc_id == "cats.md"] == ["Cats now chase laser pointers at night."]
    info = {d.doc_id: d for d in index.documents()}["cats.md"]
    assert info.n_chunks == 1 and info.metadata == {}


def test_delete_documents(location: str) -> None:
    index = open_index(location)
    index.add_documents(corpus())
    assert index.delete_documents(["cats.md", "boats.md"]) == 2
    assert sorted(d.doc_id for d in index.documents()) == ["eng.md", "hr.md"]
    for mode in MODES:
        assert "cats.md" not in doc_ids(open_retriever(index, mode).retrieve(["cats purr"], k=5)[0])
    with pytest.raises(InputError):
        index.delete_documents(["never-there.md"])


@pytest.mark.parametrize("mode", MODES)
def test_filters_apply_before_the_top_k(location: str, mode: str) -> None:
    index = open_index(location)
    index.add_documents(corpus())
    retriever = open_retriever(index, mode)
    # k=1 and a query matching boats best: a post-filter would return nothing; a pre-filter returns cats.
    query = "sailing boats harbour cats"
    assert doc_ids(retriever.retrieve([query], k=1, filters={"topic": "pets"})[0]) == ["cats.md"]
    assert doc_ids(retriever.retrieve([query], k=1, filters={"year": "2020"})[0]) == ["cats.md"]
    assert doc_ids(retriever.retrieve([query], k=1, filters={"doc_id": ["cats.md", "hr.md"]})[0]) == ["cats.md"]
    assert retriever.retrieve([query], k=3, filters={"topic": "nope"})[0] == []


def test_rerank_reorders_the_filtered_ranking(location: str, tiny_lm_dir) -> None:
    """hybrid-convex+rerank on every backend: the same hits as hybrid-convex, reordered; filters still apply first."""
    index = open_index(location)
    index.add_documents(corpus())
    settings = {"rerank_model": str(tiny_lm_dir), "rerank_weight": 1.0}
    query = ["sailing boats harbour cats"]
    base = open_retriever(index, "hybrid-convex").retrieve(query, k=4)[0]
    hits = open_retriever(index, "hybrid-convex+rerank", **settings).retrieve(query, k=4)[0]
    assert sorted(doc_ids(hits)) == sorted(doc_ids(base)) and [h.rank for h in hits] == list(range(len(hits)))
    filtered = open_retriever(index, "hybrid-convex+rerank", **settings).retrieve(query, k=1, filters={"topic": "pets"})
    assert doc_ids(filtered[0]) == ["cats.md"]


def test_reopen_sees_the_same_documents(location: str) -> None:
    open_index(location).add_documents(corpus())
    again = Index.open(location, embedder=HashEmbedder(64))
    assert again.config == with_precision(CONFIG)
    assert sorted(d.doc_id for d in again.documents()) == ["boats.md", "cats.md", "eng.md", "hr.md"]
    assert {c.doc_id for c in again.chunks()} == {"boats.md", "cats.md", "eng.md", "hr.md"}
    first = again.chunks()[0]
    assert again.get_chunks([first.chunk_id]) == [first]


def test_another_embedder_is_refused(location: str) -> None:
    open_index(location).add_documents(corpus())
    other = Index.open(location, embedder=HashEmbedder(32))
    with pytest.raises(ConfigError):
        other.add_documents([Document("new.md", "Something new entirely.")])


@pytest.mark.parametrize("into", ["same", "folder"])
def test_reembed_copies_documents_and_chunks_with_new_vectors(location: str, backend: str, into: str, tmp_path) -> None:
    """`ragtune reindex` from any backend into a new collection of the same one, or into a folder."""
    from tests.store.conftest import drop_location, fresh_location

    from ragtune.index.reembed import reembed_index

    open_index(location).add_documents(corpus())
    target = fresh_location(backend if into == "same" else "folder", tmp_path / "target")
    try:
        stats = reembed_index(location, target, "hash:32")
        old, new = Index.open(location, embedder=HashEmbedder(64)), Index.open(target, embedder=HashEmbedder(32))
        assert (stats.documents, stats.chunks, stats.dim) == (4, len(old), 32) and len(new) == len(old)
        assert sorted((d.doc_id, d.hash, d.n_chunks, json.dumps(d.metadata, sort_keys=True)) for d in new.documents()) == \
            sorted((d.doc_id, d.hash, d.n_chunks, json.dumps(d.metadata, sort_keys=True)) for d in old.documents())
        assert sorted((c.chunk_id, c.text) for c in new.chunks()) == sorted((c.chunk_id, c.text) for c in old.chunks())
        retriever = open_retriever(new, "dense")
        assert doc_ids(retriever.retrieve(["Cats purr and sleep in the sun"], k=1)[0]) == ["cats.md"]
        hits = retriever.retrieve(["salary reviews firmware budget"], k=4, filters={ACCESS_FIELD: ["eng"]})[0]
        assert sorted(doc_ids(hits)) == ["boats.md", "cats.md", "eng.md"]  # the access groups came along: no hr.md
        with pytest.raises(ConfigError, match="re-embed into a new|not empty"):
            reembed_index(location, target, "hash:32")  # the target holds an index now: refused, kept
        assert len(Index.open(target, embedder=HashEmbedder(32))) == len(old)
    finally:
        drop_location(target)


def test_a_reembed_that_fails_midway_drops_its_new_collection(store_uri: str, tmp_path, monkeypatch) -> None:
    from ragtune.errors import BackendError
    from ragtune.index.reembed import reembed_index
    from ragtune.store.milvus import MilvusStore
    from ragtune.store.postgres import PostgresStore

    source = tmp_path / "source"
    open_index(str(source)).add_documents(corpus())
    monkeypatch.setattr("ragtune.store.index.WRITE_DOCS", 1)  # one document per write
    calls = []
    for cls in (MilvusStore, PostgresStore):
        real = cls.replace_documents

        def failing(self, docs, chunks, vectors, real=real):
            calls.append(len(docs))
            if len(calls) == 3:
                raise BackendError("the engine went away")
            return real(self, docs, chunks, vectors)

        monkeypatch.setattr(cls, "replace_documents", failing)
    with pytest.raises(BackendError, match="went away"):
        reembed_index(source, store_uri, "hash:32")
    assert calls == [1, 1, 1]
    with pytest.raises(NotBuiltError):
        Index.open(store_uri, embedder=HashEmbedder(32))  # two documents were written, and dropped again


def test_precomputed_chunks_and_vectors_are_written_as_given(location: str) -> None:
    """What `ingest --ray` hands over (Ray workers chunk and embed); a store index once refused the keyword."""
    from ragtune.ingest import chunk_documents, load_tokenizer

    index = open_index(location)
    docs = corpus()
    (cats,) = [d for d in docs if d.doc_id == "cats.md"]
    chunks = chunk_documents([cats], CONFIG.chunk, load_tokenizer("bundled"))
    vectors = HashEmbedder(64).encode(["submarine periscope torpedo"] * len(chunks))  # not what cats.md says
    stats = index.add_documents(docs, precomputed={"cats.md": (chunks, vectors)})
    assert stats.added == 4
    hits = open_retriever(index, "dense").retrieve(["submarine periscope torpedo"], k=1)[0]
    assert doc_ids(hits) == ["cats.md"]  # its vectors are the ones given
    assert sorted(c.chunk_id for c in index.chunks() if c.doc_id == "cats.md") == sorted(c.chunk_id for c in chunks)


def test_compare_runs_on_every_backend(location: str, backend: str, tiny_lm_dir, tmp_path) -> None:
    """compare on milvus:// or postgresql:// failed reading the URI as a folder (the index's size on disk)."""
    from ragtune.workflows.compare import CompareConfig, run_compare

    open_index(location).add_documents(corpus())
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "q", "question": "What do cats do?", "answer": "purr", "doc_id": "cats.md"})
                         + "\n")
    run = run_compare(CompareConfig(index=location, questions=str(questions), out=str(tmp_path / "run"), arms=("rag",),
                                    model=str(tiny_lm_dir), max_new_tokens=8, runs_db=str(tmp_path / "runs.db")))
    index = json.loads((run / "results.json").read_text())["setup"]["index"]
    assert index["path"] == location and index["documents"] == 4
    assert (index["size_bytes"] is None) == (backend != "folder")


def test_rows_a_killed_milvus_writer_left_are_removed_by_the_next_ingest(tmp_path) -> None:
    """Milvus has no multi-statement transactions: killed after a changed document's new rows but before its record,
    a writer left both versions, and a re-run with the recorded content ('unchanged') kept them."""
    from tests.store.conftest import drop_location, fresh_location

    from ragtune.store.base import StoredDocument

    uri = fresh_location("milvus", tmp_path)
    try:
        index = open_index(uri)
        index.add_documents(corpus())
        before = len(index)
        (cats,) = [d for d in index.documents() if d.doc_id == "cats.md"]
        stray = [c for c in index.chunks() if c.doc_id == "cats.md"]
        record = StoredDocument("cats.md", "0" * 64, "Cats", cats.source, len(stray))
        store = index.store
        store.client.upsert(store.collection, [store._chunk_row(c, record.hash, np.ones(64, np.float32) / 8.0, c.text)
                                               for c in stray])  # the new version's rows, no record: the kill
        store.flush()
        assert store.count() == before + len(stray)
        stats = open_index(uri).add_documents(corpus())  # the recorded content again: unchanged
        assert stats.unchanged == 4 and Index.open(uri, embedder=HashEmbedder(64)).store.count() == before
    finally:
        drop_location(uri)


class QuantisedHash(HashEmbedder):
    """The hashing fake posing as an int8 embedder of one quantised graph format."""

    def __init__(self, int8_graph: int) -> None:
        super().__init__(64)
        self.precision, self.int8_graph = "int8", int8_graph


def test_the_index_embeds_at_its_configured_precision(location: str) -> None:
    pytest.importorskip("onnxruntime")
    config = CONFIG.model_copy(update={"embed": EmbedConfig(model="bundled", precision="int8")})
    embedder = Index.open_or_create(location, config).embedder  # no embedder given: the config's, at its precision
    assert (embedder.precision, embedder.int8_graph > 0) == ("int8", True)


def test_int8_vectors_of_another_quantised_graph_are_refused(location: str) -> None:
    config = CONFIG.model_copy(update={"embed": EmbedConfig(model="hash:64", precision="int8")})
    Index.open_or_create(location, config, embedder=QuantisedHash(2)).add_documents(corpus())
    with pytest.raises(ConfigError, match="int8"):
        Index.open(location, embedder=QuantisedHash(3)).add_documents([Document("new.md", "Something new entirely.")])
    again = Index.open(location, embedder=QuantisedHash(2))
    assert sorted(d.doc_id for d in again.documents()) == ["boats.md", "cats.md", "eng.md", "hr.md"]
    again.add_documents([Document("new.md", "Something new entirely.")])  # the same graph's vectors: added
    assert len(Index.open(location, embedder=QuantisedHash(2)).documents()) == 5


# ---- the VectorStore protocol on server backends ----------------------------------------------------------
def _chunks(doc: StoredDocument, texts: list[str], groups: list[str] | None = None) -> list[Chunk]:
    meta = dict(doc.metadata)
    if groups:
        meta["groups"] = groups
    return [Chunk(f"{doc.doc_id}#{i}", doc.doc_id, t, doc.title, i, doc.source, meta) for i, t in enumerate(texts)]


def _vectors(texts: list[str]) -> np.ndarray:
    return HashEmbedder(16).encode(texts)


def test_store_config_round_trip_and_mismatch(store_uri: str) -> None:
    store = open_store(store_uri)
    try:
        assert store.read_config() is None
        config = StoreConfig("hash:16", 16, CONFIG.model_dump())
        store.write_config(config)
        assert store.read_config() == config
        with pytest.raises(ConfigError):
            store.write_config(StoreConfig("other", 32, {}))
    finally:
        store.close()


def test_store_replace_delete_and_access_filter(store_uri: str) -> None:
    store = open_store(store_uri)
    try:
        store.write_config(StoreConfig("hash:16", 16, {}))
        public = StoredDocument("a", "h1", "A", "a.txt", 2, {"topic": "x"})
        secret = StoredDocument("b", "h2", "B", "b.txt", 1, {"groups": ["hr"]})
        chunks = _chunks(public, ["alpha one", "alpha two"]) + _chunks(secret, ["alpha secret"], ["hr"])
        store.replace_documents([public, secret], chunks, _vectors([c.text for c in chunks]))
        assert store.count() == 3
        assert [(d.doc_id, d.hash, d.n_chunks) for d in store.list_documents()] == [("a", "h1", 2), ("b", "h2", 1)]
        q = _vectors(["alpha secret"])
        seen = doc_ids(store.dense_search(q, 5, {ACCESS_FIELD: ["eng"]})[0])
        assert sorted(seen) == ["a", "a"]
        assert doc_ids(store.keyword_search(["secret"], 5, {ACCESS_FIELD: ["hr"]})[0]) == ["b"]
        newer = StoredDocument("a", "h3", "A", "a.txt", 1, {})
        store.replace_documents([newer], _chunks(newer, ["beta"]), _vectors(["beta"]))
        assert store.count() == 2
        assert store.get_chunks(["a#0", "a#1"])[0].text == "beta"
        assert store.get_chunks(["a#1"]) == [None]
        assert store.delete_documents(["a", "zzz"]) == 1
        assert [d.doc_id for d in store.list_documents()] == ["b"]
    finally:
        store.close()
