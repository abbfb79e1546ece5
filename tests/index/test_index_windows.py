"""Sentence windows (ragtune.index.windows): stored per segment, carried through deletes, compaction, re-embedding
and re-chunking, and dense search scoring a chunk by its best window — exactly, or through HNSW."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ragtune.cli import build_app
from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig
from ragtune.errors import ConfigError, NotBuiltError
from ragtune.index import Index
from ragtune.index import manifest as mf
from ragtune.index import store
from ragtune.index.embed import HashEmbedder, chunk_embed_text
from ragtune.index.reembed import reembed_index
from ragtune.index.windows import Windows, WindowDenseIndex, concat, window_texts
from ragtune.retrieve import open_retriever
from ragtune.text import split_sentences
from ragtune.types import Chunk, Document

TOPICS = ["paid leave", "vpn portal", "intranet login", "expense claims", "parking permits", "fire drills"]
DOCS = [
    Document(doc_id=f"d{i}", title=f"Policy {i}",
             text=f"Staff read about {TOPICS[i]} on day {i}. Managers sign forms {i}. The office opens at {i + 7}. "
                  f"Questions go to desk {i}.")
    for i in range(len(TOPICS))
]
WINDOWED = IndexConfig(embed=EmbedConfig(model="hash:64", windows=2))


def _expected_scores(chunks: list[Chunk], query: str, size: int) -> np.ndarray:
    """Each chunk's best window cosine, computed from scratch."""
    embedder = HashEmbedder(64)
    q = embedder.encode([query])[0]
    scores = []
    for chunk in chunks:
        sentences = split_sentences(chunk.text)
        runs = [" ".join(sentences[s : s + size]) for s in range(max(1, len(sentences) - size + 1))]
        scores.append(max(float(embedder.encode([chunk_embed_text(chunk.title, r)])[0] @ q) for r in runs))
    return np.array(scores)


def test_window_texts_cover_runs_of_sentences_and_a_short_chunk_is_one_window() -> None:
    chunks = [Chunk("a#0", "a", "One. Two. Three.", "T"), Chunk("b#0", "b", "Only one sentence", "")]
    texts, counts = window_texts(chunks, 2)
    assert texts == ["T One. Two.", "T Two. Three.", "Only one sentence"]
    assert counts.tolist() == [2, 1]
    assert window_texts(chunks, 5)[0] == ["T One. Two. Three.", "Only one sentence"]


def test_each_distinct_window_text_is_embedded_once_and_a_whole_chunk_reuses_its_vector() -> None:
    from ragtune.index.windows import embed_windows

    chunks = [Chunk("a#0", "a", "One. Two. Three.", "T"), Chunk("a#1", "a", "Two. Three. Four.", "T"),
              Chunk("b#0", "b", "Alone here.", "")]
    chunk_vectors = HashEmbedder(16).encode([chunk_embed_text(c.title, c.text) for c in chunks])
    asked: list[str] = []

    def embed(texts: list[str]) -> np.ndarray:
        asked.extend(texts)
        return HashEmbedder(16).encode(texts)

    windows = embed_windows(chunks, 2, embed, chunk_vectors)
    assert asked == ["T One. Two.", "T Two. Three.", "T Three. Four."]  # "T Two. Three." once; "Alone here." reused
    assert windows.counts.tolist() == [2, 2, 1]
    texts, _ = window_texts(chunks, 2)
    assert np.allclose(windows.vectors, HashEmbedder(16).encode(texts))
    assert embed_windows([], 2, embed, chunk_vectors[:0]).vectors.shape == (0, 16)


def test_windows_select_and_concat_keep_each_rows_windows_together() -> None:
    vectors = np.arange(12, dtype=np.float32).reshape(6, 2)
    windows = Windows(vectors, np.array([1, 3, 2]))
    picked = windows.select([2, 0])
    assert picked.counts.tolist() == [2, 1]
    assert picked.vectors.tolist() == [[8, 9], [10, 11], [0, 1]]
    both = concat([picked, windows.select([1])], 2)
    assert both.counts.tolist() == [2, 1, 3] and len(both.vectors) == 6
    assert windows.parents().tolist() == [0, 1, 1, 1, 2, 2]
    with pytest.raises(ValueError):
        Windows(vectors, np.array([1, 1]))  # counts that do not add up to the vectors


def test_window_search_is_the_best_window_per_row_and_honours_the_mask() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    counts = np.array([1, 4, 2, 3, 5, 1, 6, 2, 7, 9])
    index = WindowDenseIndex(Windows(vectors, counts))
    queries = rng.normal(size=(3, 8)).astype(np.float32)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    for query, (rows, scores) in zip(queries, index.search(queries, 4)):
        best = np.array([(vectors[s : s + c] @ query).max() for s, c in zip(starts, counts)])
        assert rows.tolist() == np.argsort(-best, kind="stable")[:4].tolist()
        assert np.allclose(scores, best[rows])
    mask = np.zeros(10, bool)
    mask[[1, 5]] = True
    rows, _ = index.search(queries[:1], 4, mask)[0]
    assert sorted(rows.tolist()) == [1, 5]
    assert index.search(queries[:1], 4, np.zeros(10, bool))[0][0].size == 0


def test_window_search_through_hnsw_groups_windows_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("faiss")
    from ragtune.index import dense, windows

    monkeypatch.setattr(windows, "EXACT_MAX_WINDOWS", 0)
    monkeypatch.setattr(dense, "ANN_MIN_ROWS", 0)
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    counts = np.full(100, 3)
    ann = WindowDenseIndex(Windows(vectors, counts))
    assert ann.backend == "hnsw"
    monkeypatch.setattr(windows, "EXACT_MAX_WINDOWS", 10_000)
    exact = WindowDenseIndex(Windows(vectors, counts))
    queries = rng.normal(size=(5, 16)).astype(np.float32)
    for (a_rows, a_scores), (e_rows, e_scores) in zip(ann.search(queries, 5), exact.search(queries, 5)):
        assert len(set(a_rows.tolist())) == len(a_rows) == 5  # one hit a row
        assert a_rows.tolist() == e_rows.tolist() and np.allclose(a_scores, e_scores, atol=1e-5)
    mask = np.zeros(100, bool)
    mask[:10] = True
    assert set(ann.search(queries[:1], 5, mask)[0][0].tolist()) <= set(range(10))


def test_an_index_with_windows_scores_chunks_by_their_best_window_across_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "COMPACT_MIN_DEAD", 1)
    index = Index.create(tmp_path / "ix", WINDOWED)
    index.add_documents(DOCS[:3])
    index.add_documents(DOCS[3:])
    segments = list((tmp_path / "ix" / mf.SEGMENTS).iterdir())
    assert len([p for p in segments if p.name.endswith(".wcounts.npy")]) == 2
    query = "Managers sign forms 4. The office opens at 11."
    for reopened in (index, Index.open(tmp_path / "ix")):
        hits = open_retriever(reopened, "dense").retrieve([query], k=6)[0]
        chunks = reopened.state.chunks
        want = _expected_scores(chunks, query, 2)
        assert hits[0].chunk.doc_id == "d4"
        assert [h.score for h in hits] == pytest.approx(sorted(want, reverse=True), abs=1e-5)
    index.delete_documents(["d0", "d1", "d2", "d4"])  # tombstones outnumber the live rows: compacted
    assert len(index.state.manifest.segments) == 1
    reopened = Index.open(tmp_path / "ix")
    assert [c.doc_id for c in reopened.state.chunks] == ["d3", "d5"]
    assert reopened.state.windows.counts.tolist() == [3, 3]
    query = "The office opens at 12. Questions go to desk 5."
    hits = open_retriever(reopened, "dense").retrieve([query], k=2)[0]
    assert hits[0].chunk.doc_id == "d5"
    assert [h.score for h in hits] == pytest.approx(sorted(_expected_scores(reopened.state.chunks, query, 2), reverse=True), abs=1e-5)
    assert not [p for p in (tmp_path / "ix" / mf.SEGMENTS).iterdir() if p.name.split(".")[0] not in reopened.state.manifest.segments]


def test_precomputed_chunks_get_their_windows_embedded_here(tmp_path: Path) -> None:
    made = Index.create(tmp_path / "made", WINDOWED)
    made.add_documents(DOCS)
    chunks = made.state.chunks
    precomputed = {d.doc_id: ([c for c in chunks if c.doc_id == d.doc_id],
                              made.state.vectors[[i for i, c in enumerate(chunks) if c.doc_id == d.doc_id]]) for d in DOCS}
    index = Index.create(tmp_path / "ix", WINDOWED)
    index.add_documents(DOCS, precomputed=precomputed)
    assert np.allclose(index.state.windows.vectors, made.state.windows.vectors)
    assert index.state.windows.counts.tolist() == made.state.windows.counts.tolist()


def test_precomputed_windows_that_do_not_fit_their_chunks_are_refused(tmp_path: Path) -> None:
    from ragtune.errors import InputError

    index = Index.create(tmp_path / "ix", WINDOWED)
    chunk = Chunk("a#0", "a", "One. Two.")
    wrong = Windows(np.zeros((3, 64), np.float32), np.array([1, 2]))  # two chunks' windows for one chunk
    with pytest.raises(InputError, match="sentence windows of 'a' do not match"):
        index.add_documents([Document("a", "One. Two.")], precomputed={"a": ([chunk], np.zeros((1, 64), np.float32), wrong)})
    assert Index.open(tmp_path / "ix").state.manifest.generation == 0 and not any((tmp_path / "ix" / mf.SEGMENTS).iterdir())


def test_another_window_size_is_another_config_and_a_store_refuses_windows(tmp_path: Path) -> None:
    Index.create(tmp_path / "ix", WINDOWED).add_documents(DOCS[:1])
    with pytest.raises(ConfigError, match=r"--windows 2 \(asked 0\)"):
        Index.open_or_create(tmp_path / "ix", IndexConfig(embed=EmbedConfig(model="hash:64")))
    for uri in ("milvus://127.0.0.1:1/c", "postgresql://u:secret@127.0.0.1:1/db?collection=c"):
        with pytest.raises(ConfigError, match="folder indexes only") as err:
            Index.open_or_create(uri, WINDOWED)  # refused before any connection is tried
        assert "secret" not in str(err.value)


def test_missing_window_files_say_the_index_is_incomplete(tmp_path: Path) -> None:
    Index.create(tmp_path / "ix", WINDOWED).add_documents(DOCS)
    next((tmp_path / "ix" / mf.SEGMENTS).glob("*.wcounts.npy")).unlink()
    with pytest.raises(NotBuiltError, match="wcounts.npy is missing"):
        Index.open(tmp_path / "ix")


def test_window_counts_that_do_not_fit_the_segment_say_which_file_is_corrupt(tmp_path: Path) -> None:
    from ragtune.errors import IndexCorruptError

    Index.create(tmp_path / "ix", WINDOWED).add_documents(DOCS)
    counts = next((tmp_path / "ix" / mf.SEGMENTS).glob("*.wcounts.npy"))
    np.save(counts, np.array([1, 2, 3]))
    with pytest.raises(IndexCorruptError, match=r"wcounts.npy.*expected 6 window counts"):
        Index.open(tmp_path / "ix")
    np.save(counts, np.full(6, 99))  # more windows than the vectors file holds
    with pytest.raises(IndexCorruptError, match="window vectors do not match counts"):
        Index.open(tmp_path / "ix")


def test_reembed_carries_windows_or_drops_them_when_asked(tmp_path: Path) -> None:
    Index.create(tmp_path / "src", WINDOWED).add_documents(DOCS)
    assert reembed_index(tmp_path / "src", tmp_path / "same", "hash:32").windows == 2
    same = Index.open(tmp_path / "same")
    assert same.config.embed.windows == 2 and same.state.windows.vectors.shape[1] == 32
    texts, counts = window_texts(same.state.chunks, 2)
    assert np.allclose(same.state.windows.vectors, HashEmbedder(32).encode(texts))
    reembed_index(tmp_path / "src", tmp_path / "none", "hash:32", windows=0)
    assert Index.open(tmp_path / "none").state.windows is None
    with pytest.raises(ConfigError, match="folder indexes only"):
        reembed_index(tmp_path / "src", "milvus://127.0.0.1:1/c", "hash:32")


def test_rechunking_keeps_windows_and_reuses_their_vectors(tmp_path: Path) -> None:
    from ragtune.index.rechunk import EmbeddingCache, exact_documents, rechunk_index

    source = Index.create(tmp_path / "src", WINDOWED)
    source.add_documents(DOCS)
    cache = EmbeddingCache()
    cache.add_index(source)
    target = rechunk_index(source, tmp_path / "re", ChunkConfig(chunk_tokens=300, overlap_tokens=16),
                           exact_documents(source), cache)
    assert target.config.embed.windows == 2 and target.state.windows.counts.tolist() == [3] * len(DOCS)
    assert cache.embedded == 0  # every chunk is one at both sizes: chunks and windows came from the cache


def test_cli_ingest_with_windows_and_a_bad_size(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for doc in DOCS:
        (docs / f"{doc.doc_id}.txt").write_text(doc.text)
    runner = CliRunner()
    ok = runner.invoke(build_app(), ["ingest", str(docs), "--index", str(tmp_path / "ix"), "--embedder", "hash:64",
                                     "--windows", "2"])
    assert ok.exit_code == 0, ok.output
    assert Index.open(tmp_path / "ix").state.windows.counts.sum() == 3 * len(DOCS)
    other = runner.invoke(build_app(), ["ingest", str(docs), "--index", str(tmp_path / "ix"), "--embedder", "hash:64",
                                        "--windows", "0"])
    assert isinstance(other.exception, ConfigError) and "--windows 2 (asked 0)" in str(other.exception)  # main: exit 2
    bad = runner.invoke(build_app(), ["ingest", str(docs), "--index", str(tmp_path / "ix2"), "--windows", "9"])
    assert bad.exit_code == 2 and "--windows" in bad.output
    assert not (tmp_path / "ix2").exists()
