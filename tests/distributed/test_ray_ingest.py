"""Ingestion on Ray gives the index the single-process path makes: same chunks, vectors (1e-5), manifest, dedupe."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import numpy as np
import pytest

from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig
from ragtune.errors import ConfigError, InputError
from ragtune.index import Index
from ragtune.types import Document

SLOW = pytest.mark.slow  # a Ray instance and Ray Data pipelines: seconds each

SENTENCES = ["The harbour opened in {n}.", "Ships from {n} ports call there.", "The master is Ilse Varga {n}.",
             "Charts are kept in room {n}.", "Soup is served on day {n}."]


def _docs(count: int = 12) -> list[Document]:
    return [Document(f"doc{i:02d}.md", " ".join(s.format(n=i * 7 + j) for j, s in enumerate(SENTENCES * (1 + i % 3))),
                     f"Doc {i}", f"doc{i:02d}.md", {"n": i}) for i in range(count)]


def _manifest_docs(index: Index) -> dict:
    return {d.doc_id: (d.hash, d.n_chunks, d.title, d.metadata) for d in index.documents()}


def _assert_same_index(ray_index: Index, plain_index: Index) -> None:
    assert _manifest_docs(ray_index) == _manifest_docs(plain_index)
    ray_rows = {c.chunk_id: i for i, c in enumerate(ray_index.chunks())}
    plain_rows = {c.chunk_id: i for i, c in enumerate(plain_index.chunks())}
    assert set(ray_rows) == set(plain_rows)
    assert sorted(ray_index.chunks(), key=lambda c: c.chunk_id) == sorted(plain_index.chunks(), key=lambda c: c.chunk_id)
    order = sorted(ray_rows)
    ray_vectors = ray_index.state.vectors[[ray_rows[c] for c in order]]
    plain_vectors = plain_index.state.vectors[[plain_rows[c] for c in order]]
    np.testing.assert_allclose(ray_vectors, plain_vectors, atol=1e-5)


def _config(model: str = "hash:64") -> IndexConfig:
    return IndexConfig(chunk=ChunkConfig(chunk_tokens=24, overlap_tokens=4), embed=EmbedConfig(model=model))


@SLOW
def test_ray_ingest_equals_the_single_process_index(ray_local, tmp_path):
    from ragtune.distributed.ray_ingest import ray_add_documents

    docs = _docs()
    plain = Index.create(tmp_path / "plain", _config())
    plain_stats = plain.add_documents(docs, dedupe_content=True)
    distributed = Index.create(tmp_path / "ray", _config())
    ray_stats = ray_add_documents(distributed, docs, workers=2, dedupe_content=True)
    assert ray_stats == plain_stats
    assert ray_stats.chunks_added > len(docs)  # several chunks per document
    _assert_same_index(distributed, plain)

    # a second run: unchanged documents are skipped, a changed one replaced, a same-content twin deduped
    changed = [*docs[1:], Document("doc00.md", "A new text about the harbour.", "Doc 0", "doc00.md"),
               Document("copy.md", docs[3].text, docs[3].title, "copy.md", docs[3].metadata)]
    assert ray_add_documents(distributed, changed, workers=2, dedupe_content=True) == plain.add_documents(
        changed, dedupe_content=True)
    _assert_same_index(distributed, plain)
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["generation"] == 2 and manifest["embedder_id"] == "hash:64"


@SLOW
def test_ray_workers_embed_the_sentence_windows_as_the_single_process_path_does(ray_local, tmp_path):
    from ragtune.distributed.ray_ingest import ray_add_documents

    config = _config().model_copy(update={"embed": EmbedConfig(model="hash:64", windows=2)})
    docs = _docs(6)
    plain = Index.create(tmp_path / "plain", config)
    plain.add_documents(docs)
    distributed = Index.create(tmp_path / "ray", config)
    ray_add_documents(distributed, docs, workers=2)
    _assert_same_index(distributed, plain)
    rows = {c.chunk_id: i for i, c in enumerate(plain.chunks())}
    order = [rows[c.chunk_id] for c in distributed.chunks()]
    plain_windows = plain.state.windows.select(order)
    assert distributed.state.windows.counts.tolist() == plain_windows.counts.tolist()
    assert distributed.state.windows.counts.sum() > len(order)  # several windows a chunk
    np.testing.assert_allclose(distributed.state.windows.vectors, plain_windows.vectors, atol=1e-5)


@SLOW
def test_only_new_or_changed_documents_go_to_ray(ray_local, tmp_path, monkeypatch):
    from ragtune.distributed import ray_ingest

    index = Index.create(tmp_path / "index", _config())
    docs = _docs(4)
    index.add_documents(docs)
    sent = []
    real = ray_ingest.embed_on_ray
    monkeypatch.setattr(ray_ingest, "embed_on_ray", lambda d, *a, **kw: sent.append([x.doc_id for x in d]) or real(d, *a, **kw))
    edited = Document("doc02.md", "Edited text.", "Doc 2", "doc02.md")
    stats = ray_ingest.ray_add_documents(index, [*docs[:2], edited, docs[3]], workers=1)
    assert sent == [["doc02.md"]]
    assert (stats.replaced, stats.unchanged) == (1, 3)


def test_precomputed_vectors_of_the_wrong_shape_are_refused(tmp_path):
    index = Index.create(tmp_path / "index", _config())
    doc = Document("a.md", "Some text here.")
    chunk = __import__("ragtune.types", fromlist=["Chunk"]).Chunk("a.md#0", "a.md", "Some text here.")
    with pytest.raises(InputError, match="precomputed chunks of 'a.md' do not match"):
        index.add_documents([doc], precomputed={"a.md": ([chunk], np.zeros((1, 32), dtype=np.float32))})
    assert not (tmp_path / "index" / "segments").exists() or not any((tmp_path / "index" / "segments").iterdir())


@SLOW
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_bundled_embedder_vectors_equal_the_single_process_ones(ray_local, tmp_path, precision):
    from ragtune.distributed.ray_ingest import ray_add_documents
    from ragtune.index import manifest as mf

    docs = _docs(6)
    config = _config("bundled").model_copy(update={"embed": EmbedConfig(model="bundled", precision=precision)})
    plain = Index.create(tmp_path / "plain", config)
    plain.add_documents(docs)
    distributed = Index.create(tmp_path / "ray", config)
    ray_add_documents(distributed, docs, workers=2)
    _assert_same_index(distributed, plain)  # int8 too: the workers embed at the index's precision
    manifest = mf.read_manifest(tmp_path / "ray")
    assert (manifest.precision, manifest.int8_graph > 0) == (precision, precision == "int8")


def test_vectors_a_worker_made_with_another_embedder_are_refused(ray_local, tmp_path):
    from ragtune.distributed.ray_ingest import embed_on_ray

    with pytest.raises(ConfigError, match="a Ray worker embedded with 'hash:64', not this index's 'hash:64@int8:3'"):
        embed_on_ray(_docs(2), _config(), vectors_id="hash:64@int8:3")


@SLOW
def test_cli_ingest_with_ray(ray_local, tmp_path, capsys):
    from ragtune.cli import main

    folder = tmp_path / "docs"
    folder.mkdir()
    for doc in _docs(5):
        (folder / doc.doc_id).write_text(doc.text)
    main(["ingest", str(folder), "--index", str(tmp_path / "ray"), "--embedder", "hash:64", "--ray", "local",
          "--ray-workers", "2"])
    main(["ingest", str(folder), "--index", str(tmp_path / "plain"), "--embedder", "hash:64"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == out[1] and out[0].startswith("documents: 5 added")
    _assert_same_index(Index.open(tmp_path / "ray"), Index.open(tmp_path / "plain"))


@SLOW
def test_the_local_instance_listens_on_loopback_only(ray_local):
    import shutil

    from ragtune.distributed.ray_cluster import exposed_listeners

    if shutil.which("ss") is None or not Path("/proc").is_dir():
        pytest.skip("needs Linux /proc and ss")
    ray_local.get(ray_local.remote(lambda: 1).remote())  # a worker is running too
    assert exposed_listeners() == []


def _mixed_folder(root: Path) -> Path:
    """Markdown, text, JSONL (one bad line), a same-content copy, a binary, an empty and an unsupported file."""
    folder = root / "mixed"
    (folder / "sub").mkdir(parents=True)
    docs = _docs(4)
    (folder / "alpha.md").write_text(f"# Alpha\n\n{docs[0].text}\n")
    (folder / "copy-of-alpha.md").write_text(f"# Alpha\n\n{docs[0].text}\n")
    (folder / "beta.txt").write_text(f"Beta notes\n\n{docs[1].text}\n")
    (folder / "sub" / "gamma.md").write_text(docs[2].text)
    (folder / "sub" / "rows.jsonl").write_text(
        json.dumps({"id": "r1", "text": docs[3].text}) + "\nnot json\n" + json.dumps({"id": "r2", "text": "Short row."}) + "\n")
    (folder / "blob.txt").write_bytes(b"\x00\x01binary")
    (folder / "empty.md").write_text("  \n")
    (folder / "image.xyz").write_text("unsupported")
    return folder


def test_a_file_a_worker_cannot_find_fails_with_one_line_unless_it_is_gone_here_too(tmp_path):
    """The worker side of load_on_ray, run here: a listed file missing on the worker is an InputError when the
    driver still sees it (remote workers without the files), and the single-process skip when it is gone."""
    from ragtune.distributed.ray_ingest import _file_items, load_listed_files
    from ragtune.ingest import load_file

    present, gone = tmp_path / "present.md", tmp_path / "gone.md"
    present.write_text("# Present\n\nSome text.")
    batch = {"position": np.array([0, 1]), "path": np.array([os.fsencode(present), os.fsencode(gone)], dtype=object),
             "name": np.array([b"present.md", b"gone.md"], dtype=object), "doc_id": np.array([b"p.md", b"g.md"], dtype=object)}
    rows = load_listed_files(batch)
    assert rows["missing_on"][0] == "" and rows["missing_on"][1] == socket.gethostname()
    assert _file_items(Path("present.md"), "p.md", rows["items"][0], "") == [
        Document("p.md", "# Present\n\nSome text.", "Present", "present.md")]
    assert _file_items(gone, "g.md", rows["items"][1], rows["missing_on"][1]) == list(load_file(gone, "g.md"))
    gone.write_text("seen by the driver only")
    with pytest.raises(InputError, match=r"Ray worker on host .* cannot read .*gone\.md.* same path on every node"):
        _file_items(gone, "g.md", rows["items"][1], rows["missing_on"][1])


@SLOW
@pytest.mark.parametrize("workers", [1, 2])
def test_files_read_on_ray_load_as_load_documents_does(ray_local, tmp_path, monkeypatch, workers):
    from ragtune.distributed import ray_ingest
    from ragtune.ingest import discover, load_documents

    _mixed_folder(tmp_path)
    monkeypatch.chdir(tmp_path)  # relative paths, as typed on a command line: workers read them from elsewhere
    paths = ["mixed", "mixed/alpha.md"]  # alpha.md twice: the second is a duplicate id
    expected = load_documents(paths)
    listing = discover(paths)
    monkeypatch.setattr(ray_ingest, "load_file", None)  # the driver reads nothing; workers import their own
    assert ray_ingest.load_on_ray(*listing, workers=workers, files_per_batch=3) == expected
    assert len(expected.documents) == 6 and [s.path for s in expected.skipped] == [
        "mixed/blob.txt", "mixed/empty.md", "mixed/image.xyz", "mixed/sub/rows.jsonl:2", "mixed/alpha.md"]


REPORT_LINE = re.compile(r"^(skipped |\d+ file\(s\) or line\(s\) skipped$|\S+: unchanged \(same content as )")


def _cli(args: list[str], capsys) -> tuple[int, str, list[str]]:
    """Exit status, stdout and the report lines on stderr of `ragtune ARGS` (Ray's own log lines left out)."""
    from ragtune.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out.strip(), [line for line in err.splitlines() if REPORT_LINE.match(line)]


@SLOW
@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_ingest_with_ray_reads_the_files_on_ray_as_the_single_process_path(ray_local, tmp_path, capsys, workers):
    folder = _mixed_folder(tmp_path)
    options = ["--embedder", "hash:64", "--chunk-tokens", "24", "--overlap", "4"]
    plain = ["ingest", str(folder), "--index", str(tmp_path / "plain"), *options]
    ray = ["ingest", str(folder), "--index", str(tmp_path / "ray"), *options, "--ray", "local", "--ray-workers", workers]

    first = _cli(ray, capsys)
    assert first == _cli(plain, capsys)
    code, out, err = first
    assert code == 1 and out.startswith("documents: 5 added, 0 replaced, 1 unchanged")
    assert err[-1] == "4 file(s) or line(s) skipped" and "copy-of-alpha.md: unchanged (same content as alpha.md)" in err
    _assert_same_index(Index.open(tmp_path / "ray"), Index.open(tmp_path / "plain"))

    again = _cli(ray, capsys)  # nothing new: nothing added, no new generation
    assert again[1].startswith("documents: 0 added, 0 replaced, 6 unchanged; chunks: +0 -0")
    assert json.loads((tmp_path / "ray" / "manifest.json").read_text())["generation"] == 1

    (folder / "beta.txt").write_text("Beta notes\n\nThe harbour closed in winter.\n")
    changed = _cli(ray, capsys)
    assert changed == _cli(plain, capsys) and changed[1].startswith("documents: 0 added, 1 replaced, 5 unchanged")
    _assert_same_index(Index.open(tmp_path / "ray"), Index.open(tmp_path / "plain"))
