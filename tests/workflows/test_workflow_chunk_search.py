"""Chunk size in the settings search: exact documents, re-chunked copies built once, the embedding cache, and the
test run of `compare --search` on the chosen chunk size (tiny random LM, hashing embedder; seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig
from ragtune.index import HashEmbedder, Index
from ragtune.index.embed import chunk_embed_text
from ragtune.index.rechunk import CannotRechunk, exact_documents
from ragtune.ingest import load_documents
from ragtune.types import Document
from ragtune.workflows import search_space
from ragtune.workflows.chunk_indexes import ChunkIndexes, doc_level_gold
from ragtune.workflows.search_space import Param, SearchSpace, chunk_config

pytest.importorskip("optuna")

SHORT = [
    Document("harbour.md", "The harbour master is Ilse Varga. The harbour opened in 1952.", "Harbour"),
    Document("library.md", "The library holds 4,200 charts. It is run by Tomas Brede.", "Library"),
    Document("kitchen.md", "The kitchen serves soup on Tuesdays. The chef is Anwen Lark.", "Kitchen"),
    Document("garden.md", "The garden has 12 apple trees. The gardener is Oona Pell.", "Garden"),
]
# Line breaks inside a paragraph: the index's single chunk of it has spaces there, so only the file gives it back.
LONG = ("The mill was built in 1871 by Piet Olde.\nIt grinds 300 sacks of flour a week.\n"
        "Its four sails were replaced in 1990.\nThe miller is Rosa Teal, who lives by the river.\n"
        "On Sundays the mill is open to visitors from ten until four.\n"
        "A bakery next door sells bread made from the mill's own rye flour.\n")
QUESTIONS = [
    {"id": "a1", "question": "Who is the harbour master?", "answer": "Ilse Varga", "doc_id": "harbour.md"},
    {"id": "b1", "question": "Who runs the library?", "answer": "Tomas Brede", "doc_id": "library.md"},
    {"id": "c1", "question": "Who is the chef?", "answer": "Anwen Lark", "doc_id": "kitchen.md"},
    {"id": "d1", "question": "How many apple trees are there?", "answer": "12", "doc_id": "garden.md"},
    {"id": "m1", "question": "Who is the miller?", "answer": "Rosa Teal", "doc_id": "mill.md"},
    {"id": "m2", "question": "When was the mill built?", "answer": "1871", "doc_id": "mill.md"},
]
SMALL = 24  # tokens: the long document becomes several chunks, every short one stays one (the same text)


@pytest.fixture()
def setup(corpus, tmp_path: Path, monkeypatch) -> dict:
    """SHORT as given (no source file) and docs/mill.md loaded from a file, its source recorded as given: relative
    to the folder ingest ran in."""
    monkeypatch.chdir(tmp_path)
    Path("docs").mkdir()
    Path("docs/mill.md").write_text(LONG)
    return corpus([*SHORT, *load_documents(["docs"]).documents], QUESTIONS)


@pytest.fixture()
def encoded(monkeypatch) -> list[str]:
    """Every text the hashing embedder embeds (documents and queries)."""
    texts: list[str] = []
    real = HashEmbedder.encode

    def counting(self, batch, *args, **kwargs):
        texts.extend(batch)
        return real(self, batch, *args, **kwargs)

    monkeypatch.setattr(HashEmbedder, "encode", counting)
    return texts


@pytest.fixture()
def builds(monkeypatch) -> list[int]:
    """The chunk sizes re-chunked (built, not reused)."""
    from ragtune.workflows import chunk_indexes

    sizes: list[int] = []
    real = chunk_indexes.rechunk_index

    def counting(source, target, chunk, documents, cache):
        sizes.append(chunk.chunk_tokens)
        return real(source, target, chunk, documents, cache)

    monkeypatch.setattr(chunk_indexes, "rechunk_index", counting)
    return sizes


def _force_chunk_search(monkeypatch, *extra: Param) -> None:
    """rag searches its chunk size over {the index's own (200), SMALL} and nothing else unless `extra`."""
    space = SearchSpace((Param("chunk_tokens", (SMALL,), "test"), *extra))
    monkeypatch.setitem(search_space.SEARCH_SPACES, "rag", space)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- exact documents and the re-chunked copies -----------------------------------------------------------------

def test_exact_documents_come_from_single_chunks_and_source_files(setup):
    index = Index.open(setup["index"])
    docs = {d.doc_id: d for d in exact_documents(index)}
    assert set(docs) == {"harbour.md", "library.md", "kitchen.md", "garden.md", "mill.md"}
    assert docs["mill.md"].text == LONG  # the file's text, line breaks and all
    assert "\n" not in index.get_chunks(["mill.md#0"])[0].text  # what the index alone holds of it
    assert docs["harbour.md"].text == SHORT[0].text


def test_a_document_that_cannot_be_read_back_makes_the_size_unbuildable(setup):
    index = Index.open(setup["index"])
    (setup["tmp"] / "docs" / "mill.md").write_text(LONG + "Edited after the ingest.\n")
    with pytest.raises(CannotRechunk, match="1 of the 5 document.*'mill.md'.*no longer holds the text"):
        exact_documents(index)
    api = Index.create(setup["tmp"] / "api", IndexConfig(embed=EmbedConfig(model="hash:64")))
    api.add_documents([Document("note", LONG, "Note", source="api")])  # a multi-line text sent to the server
    with pytest.raises(CannotRechunk, match="'note': source 'api' is not a file here"):
        exact_documents(api)


def test_a_chunk_size_is_built_once_and_identical_chunks_come_from_the_cache(setup, encoded, builds):
    index = Index.open(setup["index"])
    chunks = ChunkIndexes.under(index, setup["tmp"] / "search")
    small = chunks.get(SMALL)
    assert small.config.chunk == ChunkConfig(chunk_tokens=SMALL, overlap_tokens=4)  # 32/200 of the size
    assert small.config.embed == index.config.embed and len(small) > len(index)
    new_texts = {chunk_embed_text(c.title, c.text) for c in small.chunks()} - {
        chunk_embed_text(c.title, c.text) for c in index.chunks()}
    assert new_texts and sorted(encoded) == sorted(new_texts)  # only the long document's new chunks
    assert chunks.cache.embedded == len(new_texts) and chunks.cache.hits == 4  # the four short documents
    own = {c.chunk_id: v for c, v in zip(index.chunks(), index.state.vectors)}
    again = {c.chunk_id: v for c, v in zip(small.chunks(), small.state.vectors)}
    assert all(np.array_equal(again[f"{d.doc_id}#0"], own[f"{d.doc_id}#0"]) for d in SHORT)  # the cached vectors
    assert chunks.get(SMALL) is small and chunks.get(200) is index and builds == [SMALL]
    encoded.clear()
    reopened = ChunkIndexes.under(index, setup["tmp"] / "search").get(SMALL)  # a later run (--resume)
    assert builds == [SMALL] and encoded == [] and len(reopened) == len(small)


@pytest.mark.parametrize("backend", ["milvus", "postgres"])
def test_a_store_index_is_re_chunked_into_folders(backend, setup, builds):
    """`tune`/`compare --search` on milvus:// or postgresql://: the copies are local folders of the same
    documents (it once failed on the store's manifest, which has no embedder id)."""
    from tests.store.conftest import drop_location, fresh_location

    uri = fresh_location(backend, setup["tmp"])
    try:
        store = Index.open_or_create(uri, IndexConfig(embed=EmbedConfig(model="hash:64")), embedder=HashEmbedder(64))
        store.add_documents([*SHORT, *load_documents(["docs"]).documents])
        chunks = ChunkIndexes.under(store, setup["tmp"] / "search")
        small = chunks.get(SMALL)
        assert isinstance(small, Index) and small.config.chunk.chunk_tokens == SMALL and len(small) > len(store)
        assert {d.doc_id: d.hash for d in small.documents()} == {d.doc_id: d.hash for d in store.documents()}
        assert chunks.describe(200)["index"] == uri and chunks.describe(SMALL)["rechunked"]
        ChunkIndexes.under(Index.open(uri, embedder=HashEmbedder(64)), setup["tmp"] / "search").get(SMALL)
        assert builds == [SMALL]  # the second run reuses the copy
    finally:
        drop_location(uri)


def test_a_copy_of_other_documents_is_built_again(setup, builds):
    index = Index.open(setup["index"])
    ChunkIndexes.under(index, setup["tmp"] / "search").get(SMALL)
    index.add_documents([Document("school.md", "The school has 240 pupils.", "School")])
    rebuilt = ChunkIndexes.under(index, setup["tmp"] / "search").get(SMALL)
    assert builds == [SMALL, SMALL] and "school.md" in {d.doc_id for d in rebuilt.documents()}


def test_overlap_scales_with_the_chunk_size_and_gold_chunks_become_documents():
    assert chunk_config(200, ChunkConfig()) == ChunkConfig()
    assert chunk_config(128, ChunkConfig()) == ChunkConfig(chunk_tokens=128, overlap_tokens=20)
    assert chunk_config(320, ChunkConfig()) == ChunkConfig(chunk_tokens=320, overlap_tokens=51)
    from ragtune.types import Example

    judged = doc_level_gold([Example("q?", "a", chunk_id="mill.md#3"), Example("r?", "b", doc_id="x.md")])
    assert [(e.doc_id, e.chunk_id) for e in judged] == [("mill.md", ""), ("x.md", "")]


# --- the search and the test run -------------------------------------------------------------------------------

def _tune(setup: dict, **changes):
    from ragtune.workflows.tune import TuneConfig

    base = {"index": setup["index"], "questions": setup["questions"], "out": str(setup["tmp"] / "tune"), "arm": "rag",
            "trials": 2, "model": setup["model"], "max_new_tokens": 4, "k": 2}
    return TuneConfig(**{**base, **changes})


def test_tune_builds_a_chunk_size_once_and_resume_reuses_it(setup, monkeypatch, builds, encoded):
    from ragtune.workflows.tune import run_tune

    _force_chunk_search(monkeypatch)
    result = run_tune(_tune(setup))
    assert result.sampler == "grid" and sorted(t.params["chunk_tokens"] for t in result.trials) == [SMALL, 200]
    assert builds == [SMALL] and not any(t.skipped for t in result.trials)
    best = json.loads((setup["tmp"] / "tune" / "best.json").read_text())
    assert best["space"]["chunk_tokens"] == [200, SMALL] and best["skipped_trials"] == 0
    size = best["params"]["chunk_tokens"]
    assert best["index"]["chunk_tokens"] == size and best["index"]["rechunked"] == (size == SMALL)
    # a fresh process resumes with k searched too: two new trials, one on the SMALL copy, which is not rebuilt
    _force_chunk_search(monkeypatch, Param("k", (3,), "test"))
    encoded.clear()
    resumed = run_tune(_tune(setup, trials=4, resume=True))
    assert len(resumed.trials) == 4 and builds == [SMALL]
    documents = {chunk_embed_text(c.title, c.text) for c in Index.open(setup["index"]).chunks()}
    assert not documents & set(encoded)  # only questions were embedded: no chunk of any size
    copy = setup["tmp"] / "tune" / "chunk-indexes"
    assert [p.name[:6] for p in copy.iterdir()] == ["index-"] and len(list(copy.glob("*/chunks-24"))) == 1


def test_a_chunk_size_that_cannot_be_built_is_a_skipped_trial(setup, monkeypatch, builds):
    from ragtune.workflows.tune import run_tune

    (setup["tmp"] / "docs" / "mill.md").unlink()  # its text can no longer be had
    _force_chunk_search(monkeypatch)
    result = run_tune(_tune(setup))
    skipped = [t for t in result.trials if t.skipped]
    assert [t.params["chunk_tokens"] for t in skipped] == [SMALL] and not skipped[0].feasible
    assert "chunk size 24" in skipped[0].skipped and "'mill.md'" in skipped[0].skipped
    assert result.best.params["chunk_tokens"] == 200 and builds == []  # failed before writing anything
    rows = _lines(setup["tmp"] / "tune" / "trials.jsonl")
    row = next(r for r in rows if r.get("skipped"))
    assert row["validation"]["n"] == 0 and row["validation"]["latency_ms_p95"] is None
    assert json.loads((setup["tmp"] / "tune" / "best.json").read_text())["skipped_trials"] == 1


def test_compare_answers_the_test_split_on_the_chosen_chunk_size(setup, monkeypatch, builds):
    from ragtune.workflows import search
    from ragtune.workflows.compare import CompareConfig, run_compare

    _force_chunk_search(monkeypatch)
    # The tiny random LM scores ~0 everywhere: make the re-chunked trial the winner to follow it to the test run.
    monkeypatch.setattr(search, "_best", lambda arm, trials, defaults, limits: next(
        (t for t in trials if t.params.get("chunk_tokens") == SMALL), trials[0]))
    monkeypatch.setattr(search, "_confirmed", lambda best, trials, defaults, seed: (best, None))
    config = CompareConfig(index=setup["index"], questions=setup["questions"], out=str(setup["tmp"] / "run"),
                           arms=("base", "rag"), model=setup["model"], max_new_tokens=4, k=3, search=2,
                           validation_share=0.5)
    run = run_compare(config)
    assert builds == [SMALL]  # built by the search, reused by the test run
    results = json.loads((run / "results.json").read_text())
    chosen = results["setup"]["arms"]["rag"]["index"]
    assert chosen["chunk_tokens"] == SMALL and chosen["overlap_tokens"] == 4 and chosen["rechunked"]
    assert (run / chosen["index"] / "manifest.json").is_file() and chosen["index"].startswith("search/chunk-indexes/")
    assert results["search"]["arms"]["rag"]["params"]["chunk_tokens"] == SMALL
    assert "index" not in results["setup"]["arms"]["base"] or results["setup"]["arms"]["base"]["index"] is None
    copy_ids = {c.chunk_id for c in Index.open(run / chosen["index"]).chunks()}
    rag_rows = [r for r in _lines(run / "predictions.jsonl") if r["arm"] == "rag"]
    retrieved = {h["chunk_id"] for r in rag_rows for h in r["retrieved"]}
    assert retrieved <= copy_ids  # the long document's later chunks exist only in the copy:
    assert retrieved - {c.chunk_id for c in Index.open(setup["index"]).chunks()}
    assert all(r["gold_chunk_ids"] == [] for r in rag_rows)
    assert "Answered on the index re-chunked at 24 tokens (overlap 4)" in (run / "report.html").read_text()
