"""Index folder mechanics with the hashing fake embedder: add, dedupe, replace, delete, reopen, crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig
from ragtune.errors import ConfigError, InputError, NotBuiltError
from ragtune.index import Index
from ragtune.index import manifest as mf
from ragtune.index.embed import with_precision
from ragtune.types import Document

CONFIG = IndexConfig(embed=EmbedConfig(model="hash:64"), chunk=ChunkConfig(chunk_tokens=32, overlap_tokens=4))


def _docs() -> list[Document]:
    return [
        Document("cats", "Cats are small furry animals. They purr when they are happy.", title="Cats",
                 metadata={"groups": ["hr", "all"]}),
        Document("dogs", "Dogs bark at the mailman every single morning.", title="Dogs", metadata={"groups": ["it"]}),
        Document("fish", "Fish swim in the water and breathe through gills.", title="Fish", metadata={"year": 2020}),
    ]


def test_add_is_idempotent_and_counts(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "ix", CONFIG)
    first = index.add_documents(_docs())
    assert (first.added, first.replaced, first.unchanged) == (3, 0, 0)
    assert first.chunks_added == len(index) == 3
    again = index.add_documents(_docs())
    assert (again.added, again.replaced, again.unchanged, again.chunks_added) == (0, 0, 3, 0)
    assert len(index) == 3
    assert sorted(d.doc_id for d in index.documents()) == ["cats", "dogs", "fish"]
    assert len({c.chunk_id for c in index.chunks()}) == len(index)  # no duplicates ever


def test_changed_document_replaces_its_chunks(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "ix", CONFIG)
    index.add_documents(_docs())
    stats = index.add_documents([Document("dogs", "Dogs sleep all afternoon.", title="Dogs")])
    assert (stats.added, stats.replaced, stats.chunks_added, stats.chunks_removed) == (0, 1, 1, 1)
    texts = [c.text for c in index.chunks() if c.doc_id == "dogs"]
    assert texts == ["Dogs sleep all afternoon."]
    assert len(index) == 3


def test_unchanged_documents_are_not_reembedded(tmp_path: Path) -> None:
    class CountingEmbedder:
        dim, model_id = 16, "counting"

        def __init__(self) -> None:
            self.seen: list[str] = []

        def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
            self.seen.extend(texts)
            return np.tile(np.eye(16, dtype=np.float32)[0], (len(texts), 1))

    embedder = CountingEmbedder()
    index = Index.create(tmp_path / "ix", CONFIG, embedder=embedder)
    index.add_documents(_docs())
    assert len(embedder.seen) == 3
    index.add_documents(_docs()[:2] + [Document("fish", "Fish are cold.", title="Fish")])
    assert embedder.seen[3:] == ["Fish Fish are cold."]  # only the changed one, title prepended


def test_delete_and_unknown_id(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "ix", CONFIG)
    index.add_documents(_docs())
    with pytest.raises(InputError, match="nope"):
        index.delete_documents(["cats", "nope"])
    assert len(index) == 3  # all or nothing
    assert index.delete_documents(["cats"]) == 1
    assert [d.doc_id for d in index.documents()] == ["dogs", "fish"]
    assert all(c.doc_id != "cats" for c in Index.open(tmp_path / "ix").chunks())


def test_reopen_round_trip_and_get_chunks(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "ix", CONFIG)
    index.add_documents(_docs())
    reopened = Index.open(tmp_path / "ix")
    assert reopened.config == with_precision(CONFIG) and reopened.config.embed.precision == "fp32"  # hash: no int8
    assert reopened.chunks() == index.chunks()
    assert np.allclose(reopened.state.vectors, index.state.vectors)
    chunk = reopened.get_chunks(["fish#0"])[0]
    assert chunk.title == "Fish" and chunk.metadata == {"year": 2020}
    with pytest.raises(InputError, match="nope#0"):
        reopened.get_chunks(["nope#0"])
    assert json.loads((tmp_path / "ix" / "config.json").read_text())["embed"]["model"] == "hash:64"


def test_create_open_errors(tmp_path: Path) -> None:
    with pytest.raises(NotBuiltError):
        Index.open(tmp_path / "missing")
    Index.create(tmp_path / "ix", CONFIG)
    assert Index.create(tmp_path / "ix", CONFIG).config == with_precision(CONFIG)  # same config: just opens
    with pytest.raises(ConfigError, match="was built with"):
        Index.create(tmp_path / "ix", IndexConfig(embed=EmbedConfig(model="hash:32")))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(ConfigError, match="not an index"):
        Index.create(tmp_path / "junk", CONFIG)


def test_reload_sees_other_instance_commits(tmp_path: Path) -> None:
    writer = Index.create(tmp_path / "ix", CONFIG)
    reader = Index.open(tmp_path / "ix")
    assert len(reader) == 0
    writer.add_documents(_docs())
    assert len(reader) == 0
    reader.reload()
    assert len(reader) == 3


def test_compaction_drops_tombstones_and_garbage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ragtune.index import store

    monkeypatch.setattr(store, "COMPACT_MIN_DEAD", 1)
    index = Index.create(tmp_path / "ix", CONFIG)
    index.add_documents(_docs())
    before = index.chunks()
    index.add_documents([Document("dogs", "Dogs changed.", title="Dogs")])
    assert mf.read_manifest(tmp_path / "ix").dead_rows() == 1  # 1 dead < 3 live: no compaction yet
    index.delete_documents(["fish", "dogs"])  # 3 dead > 1 live: compacts
    manifest = mf.read_manifest(tmp_path / "ix")
    assert manifest.dead_rows() == 0 and len(manifest.segments) == 1
    files = sorted(p.name.split(".")[0] for p in (tmp_path / "ix" / "segments").iterdir())
    assert set(files) == set(manifest.segments)
    assert index.chunks() == [before[0]]
    assert np.allclose(index.state.vectors[0], Index.open(tmp_path / "ix").state.vectors[0])


CHILD = textwrap.dedent(
    """
    import sys
    from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig
    from ragtune.index import Index
    from ragtune.types import Document
    index = Index.open(sys.argv[1])
    print("committing", flush=True)
    index.add_documents([Document("new", "A brand new document about owls.", title="Owls")])
    print("done", flush=True)
    """
)


def _run_child(path: Path, pause: str) -> subprocess.Popen:
    env = dict(os.environ, **{mf.PAUSE_ENV: pause, "RAGTUNE_NO_PROGRESS": "1"})
    return subprocess.Popen([sys.executable, "-c", CHILD, str(path)], env=env, stdout=subprocess.PIPE, text=True)


def test_kill_during_commit_leaves_old_state_then_next_run_completes(tmp_path: Path) -> None:
    path = tmp_path / "ix"
    Index.create(path, CONFIG).add_documents(_docs())
    child = _run_child(path, "30")
    seg_dir = path / "segments"
    deadline = time.monotonic() + 60
    while len(list(seg_dir.glob("*.npy"))) < 2:  # the new segment is written, the manifest not yet
        assert child.poll() is None and time.monotonic() < deadline, "child ended before the commit point"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    index = Index.open(path)
    assert sorted(d.doc_id for d in index.documents()) == ["cats", "dogs", "fish"]
    assert len(index) == 3
    done = _run_child(path, "0")
    assert done.wait(timeout=120) == 0
    index.reload()
    assert sorted(d.doc_id for d in index.documents()) == ["cats", "dogs", "fish", "new"]
    manifest = mf.read_manifest(path)
    assert {p.name.split(".")[0] for p in seg_dir.iterdir()} == set(manifest.segments)  # garbage collected


def test_writer_lock_excludes_a_second_writer(tmp_path: Path) -> None:
    from ragtune.index.lock import IndexLockedError, writer_lock

    index = Index.create(tmp_path / "ix", CONFIG)
    with writer_lock(index.path):
        with pytest.raises(IndexLockedError, match="locked"):
            with writer_lock(index.path, timeout_s=0.2):
                pass
    with writer_lock(index.path, timeout_s=0.2):  # released: free again, and held again by the new owner
        with pytest.raises(IndexLockedError, match="locked"):
            with writer_lock(index.path, timeout_s=0.05):
                pass


def test_second_process_waits_for_a_committing_writer_then_completes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    """Issue #12 item 4, across processes: `ragtune ingest` arriving while another process commits waits,
    says so, and completes after it (it used to exit 5 after 30 s of the other's chunking and embedding)."""
    import logging

    from ragtune.cli import main

    path = tmp_path / "ix"
    Index.create(path, CONFIG).add_documents(_docs())
    child = _run_child(path, "5")  # holds the lock for 5 s inside its commit
    deadline = time.monotonic() + 60
    while len(list((path / "segments").glob("*.npy"))) < 2:
        assert child.poll() is None and time.monotonic() < deadline, "child ended before the commit point"
        time.sleep(0.02)
    (tmp_path / "owls.txt").write_text("Owls hunt at night and sleep all day.\n")
    with caplog.at_level(logging.WARNING, logger="ragtune.index.lock"):
        main(["-q", "ingest", str(tmp_path / "owls.txt"), "--index", str(path)])
    assert "1 added" in capsys.readouterr().out
    assert any("waiting for another writer on" in r.getMessage() for r in caplog.records)
    assert child.wait(timeout=60) == 0
    assert sorted(d.doc_id for d in Index.open(path).documents()) == ["cats", "dogs", "fish", "new", "owls.txt"]


def test_a_new_index_embeds_at_int8_unless_its_embedder_has_none(tmp_path: Path) -> None:
    """The default precision is fixed when an index is made: int8 for a sentence-transformers model (bundled or a
    folder), fp32 for a registered embedder ('hash'); an explicit one is kept. No model is loaded to decide."""
    assert Index.open_or_create(tmp_path / "a").config.embed.precision == "int8"
    folder = IndexConfig(embed=EmbedConfig(model=str(tmp_path / "my-st-model")))
    assert Index.open_or_create(tmp_path / "b", folder).config.embed.precision == "int8"
    assert Index.open_or_create(tmp_path / "c", CONFIG).config.embed.precision == "fp32"
    fp32 = IndexConfig(embed=EmbedConfig(precision="fp32"))
    created = Index.create(tmp_path / "d", fp32)
    assert created.config.embed.precision == "fp32"
    assert json.loads((tmp_path / "d" / "manifest.json").read_text())["config"]["embed"]["precision"] == "fp32"


def test_an_index_made_before_precision_existed_stays_fp32(tmp_path: Path) -> None:
    """A stored config without a precision holds fp32 vectors: opened, re-created with the defaults and added to
    as fp32 — never read as the new int8 default."""
    index = Index.create(tmp_path / "ix", CONFIG)
    index.add_documents(_docs())
    manifest_path = tmp_path / "ix" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["config"]["embed"]["precision"]  # as ragtune wrote it before precision existed
    manifest_path.write_text(json.dumps(manifest))
    bundled_before = IndexConfig(embed=EmbedConfig(), chunk=CONFIG.chunk)
    assert with_precision(bundled_before).embed.precision == "int8"
    assert Index.open(tmp_path / "ix").config.embed.precision == "fp32"
    assert Index.create(tmp_path / "ix", CONFIG).config.embed.precision == "fp32"  # no "another config"
    again = Index.open_or_create(tmp_path / "ix", CONFIG)
    again.add_documents([Document(doc_id="owls", text="Owls hunt at night in the old barn.")])
    assert len(Index.open(tmp_path / "ix").documents()) == 4
    with pytest.raises(ConfigError, match="was built with"):  # asking for int8 explicitly is another config
        Index.create(tmp_path / "ix", IndexConfig(embed=EmbedConfig(model="hash:64", precision="int8"), chunk=CONFIG.chunk))
