"""Concurrent writers (issue #12 item 4), no debris from failed commands (item 7), one document per content (item 9)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ragtune.cli import main
from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig
from ragtune.errors import ConfigError, IndexBusyError, NotBuiltError
from ragtune.index import HashEmbedder, Index
from ragtune.index import manifest as mf
from ragtune.index.lock import TIMEOUT_ENV, writer_lock
from ragtune.types import Document

CONFIG = IndexConfig(embed=EmbedConfig(model="hash:64"), chunk=ChunkConfig(chunk_tokens=32, overlap_tokens=4))


def _doc(doc_id: str, text: str) -> Document:
    return Document(doc_id, text, title=doc_id.title())


def _wait_for(predicate, what: str, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


class _GatedEmbedder(HashEmbedder):
    """A hashing embedder that stops inside encode until the test opens the gate (a 'slow' model)."""

    def __init__(self) -> None:
        super().__init__(64)
        self.inside = threading.Event()
        self.gate = threading.Event()

    def encode(self, texts: list[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        self.inside.set()
        assert self.gate.wait(60), "the test never opened the gate"
        return super().encode(texts, batch_size)


def _run(target, *args, **kwargs) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def body() -> None:
        try:
            box["result"] = target(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, box


def test_second_writer_waits_says_so_then_completes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    index = Index.create(tmp_path / "ix", CONFIG, embedder=HashEmbedder(64))
    caplog.set_level(logging.WARNING, logger="ragtune.index.lock")
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with writer_lock(index.path):
            held.set()
            release.wait(60)

    first, _ = _run(holder)
    assert held.wait(60)
    second, box = _run(index.add_documents, [_doc("cats", "Cats purr.")], lock_timeout_s=60)
    _wait_for(lambda: any("waiting for another writer on" in r.getMessage() for r in caplog.records), "the wait message")
    assert second.is_alive()  # still waiting: nothing committed yet
    assert mf.read_manifest(index.path).documents == {}
    release.set()
    first.join(60)
    second.join(60)
    assert "error" not in box, box.get("error")
    assert box["result"].added == 1
    assert [d.doc_id for d in Index.open(index.path).documents()] == ["cats"]


def test_busy_index_is_index_busy_error_not_backend_error(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "ix", CONFIG, embedder=HashEmbedder(64))
    with writer_lock(index.path):
        with pytest.raises(IndexBusyError, match="locked by another writer") as caught:
            index.add_documents([_doc("cats", "Cats purr.")], lock_timeout_s=0.2)
    assert caught.value.exit_code == 6 and caught.value.retry_after_s > 0
    assert index.add_documents([_doc("cats", "Cats purr.")], lock_timeout_s=0.2).added == 1  # free again


def test_cli_ingest_into_a_busy_index_exits_6_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "a.txt").write_text("Cats purr when they are happy.\n")
    ix = tmp_path / "ix"
    Index.create(ix, IndexConfig(embed=EmbedConfig(model="hash")))
    monkeypatch.setenv(TIMEOUT_ENV, "0.2")
    with writer_lock(ix):
        with pytest.raises(SystemExit) as code:
            main(["-q", "ingest", str(tmp_path / "a.txt"), "--index", str(ix)])
    err = capsys.readouterr().err
    assert code.value.code == 6
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "locked by another writer" in errors[0] and "Traceback" not in err


def test_embedding_runs_outside_the_lock(tmp_path: Path) -> None:
    """A writer stuck in a slow embedder does not hold the lock: another writer commits meanwhile,
    and the slow one then commits on top of it (re-planned, nothing lost)."""
    path = tmp_path / "ix"
    Index.create(path, CONFIG)
    slow_embedder = _GatedEmbedder()
    slow = Index.open(path, embedder=slow_embedder)
    fast = Index.open(path, embedder=HashEmbedder(64))
    thread, box = _run(slow.add_documents, [_doc("slow", "Owls hunt at night."), _doc("both", "Bees make honey.")])
    assert slow_embedder.inside.wait(60)
    # the slow writer is inside encode; a short lock timeout proves the lock is free
    stats = fast.add_documents([_doc("fast", "Dogs bark."), _doc("both", "Bees make honey.")], lock_timeout_s=0.5)
    assert stats.added == 2
    slow_embedder.gate.set()
    thread.join(60)
    assert "error" not in box, box.get("error")
    assert (box["result"].added, box["result"].unchanged) == (1, 1)  # 'both' arrived meanwhile: not re-added
    final = Index.open(path)
    assert sorted(d.doc_id for d in final.documents()) == ["both", "fast", "slow"]
    assert sorted(c.doc_id for c in final.chunks()) == ["both", "fast", "slow"]


def test_replan_embeds_what_another_writer_made_stale(tmp_path: Path) -> None:
    """Between plan and commit another writer changed a document this writer had found unchanged:
    the commit still leaves every document at the version this writer was given."""
    path = tmp_path / "ix"
    base = Index.create(path, CONFIG, embedder=HashEmbedder(64))
    base.add_documents([_doc("keep", "Version one.")])
    slow_embedder = _GatedEmbedder()
    slow = Index.open(path, embedder=slow_embedder)
    thread, box = _run(slow.add_documents, [_doc("keep", "Version one."), _doc("new", "Fresh text.")])
    assert slow_embedder.inside.wait(60)
    base.add_documents([_doc("keep", "Version two.")])
    slow_embedder.gate.set()
    thread.join(60)
    assert "error" not in box, box.get("error")
    assert box["result"].replaced == 1  # 'keep' went back to the version this writer was given
    texts = {c.doc_id: c.text for c in Index.open(path).chunks()}
    assert texts == {"keep": "Version one.", "new": "Fresh text."}


# ---- item 7: nothing on disk until the first commit -----------------------------------------------------


def test_failed_ingest_leaves_no_index_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Cats purr when they are happy.\n")
    new = tmp_path / "new"
    with pytest.raises(SystemExit) as code:
        main(["-q", "ingest", str(tmp_path / "docs"), "--index", str(new), "--embedder", str(tmp_path / "typo")])
    assert code.value.code != 0 and not new.exists()
    with pytest.raises(SystemExit) as code:
        main(["-q", "ingest", str(tmp_path / "nonexistent"), "--index", str(new)])
    assert code.value.code == 2 and not new.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["docs"]  # no temp folders either
    capsys.readouterr()
    main(["-q", "ingest", str(tmp_path / "docs"), "--index", str(new), "--embedder", "hash"])  # exits 0: returns
    assert "1 added" in capsys.readouterr().out
    assert [d.doc_id for d in Index.open(new).documents()] == ["a.txt"]


def test_open_or_create_writes_nothing_until_a_commit(tmp_path: Path) -> None:
    index = Index.open_or_create(tmp_path / "ix", CONFIG, embedder=HashEmbedder(64))
    assert not (tmp_path / "ix").exists()
    assert len(index) == 0 and index.documents() == [] and index.generation == 0
    index.reload()
    assert index.add_documents([]).added == 0 and not (tmp_path / "ix").exists()
    with pytest.raises(NotBuiltError):
        index.delete_documents(["a"])
    assert not (tmp_path / "ix").exists()
    assert index.add_documents([_doc("a", "Alpha text.")]).added == 1
    assert Index.open(tmp_path / "ix").generation == 1
    other = tmp_path / "busy"
    other.mkdir()
    (other / "x").write_text("not an index")
    with pytest.raises(ConfigError, match="not an index"):
        Index.open_or_create(other, CONFIG)
    (tmp_path / "file").write_text("x")
    under_a_file = Index.open_or_create(tmp_path / "file" / "ix", CONFIG, embedder=HashEmbedder(64))
    with pytest.raises(ConfigError, match="cannot create index folder"):
        under_a_file.add_documents([_doc("a", "Alpha text.")])


# ---- item 9: identical content is one document -----------------------------------------------------------


def test_same_content_under_a_new_id_is_not_added(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "ix", CONFIG, embedder=HashEmbedder(64))
    index.add_documents([Document("h/leave.md", "Thirty days of leave.", title="Leave")])
    assert index.add_documents([Document("copy", "Thirty days of leave.", title="Leave")], dedupe_content=True).added == 0
    stats = index.add_documents([Document("leave.md", "Thirty days of leave.", title="Leave")], dedupe_content=True)
    assert (stats.added, stats.unchanged, stats.chunks_added) == (0, 1, 0)
    assert stats.same_content == (("leave.md", "h/leave.md"),)
    # within one batch too, and a changed document with a known id still replaces its chunks
    stats = index.add_documents([
        Document("x", "Owls.", title="O"), Document("y", "Owls.", title="O"),
        Document("h/leave.md", "Forty days of leave.", title="Leave"),
    ], dedupe_content=True)
    assert (stats.added, stats.replaced, stats.same_content) == (1, 1, (("y", "x"),))
    assert sorted(d.doc_id for d in index.documents()) == ["h/leave.md", "x"]
    # the old content is free again once replaced; different metadata (e.g. access groups) is other content
    stats = index.add_documents([
        Document("leave.md", "Thirty days of leave.", title="Leave"),
        Document("z", "Owls.", title="O", metadata={"groups": ["hr"]}),
    ], dedupe_content=True)
    assert (stats.added, stats.same_content) == (2, ())
    assert index.add_documents([Document("y", "Owls.", title="O")]).added == 1  # off by default: ids chosen by callers


def test_cli_same_file_from_two_roots_is_one_document(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    h = tmp_path / "h"
    (h / "policies").mkdir(parents=True)
    (h / "policies" / "leave.md").write_text("# Leave\n\nEmployees get thirty days of paid leave.\n")
    ix = str(tmp_path / "ix")
    main(["-q", "ingest", str(h), "--index", ix, "--embedder", "hash"])
    capsys.readouterr()
    main(["-q", "ingest", str(h / "policies"), "--index", ix])
    out = capsys.readouterr()
    assert "0 added, 0 replaced, 1 unchanged" in out.out
    assert "leave.md: unchanged (same content as policies/leave.md)" in out.err
    assert [d.doc_id for d in Index.open(ix).documents()] == ["policies/leave.md"]
