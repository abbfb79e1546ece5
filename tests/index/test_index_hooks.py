"""Commit hooks: what lives beside an index (the entity graph) follows its commits without the index importing it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ragtune.config import EmbedConfig, IndexConfig
from ragtune.index import Index, on_commit
from ragtune.index import hooks
from ragtune.types import Document


def test_every_commit_calls_the_subscribed_hooks_with_the_index(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(hooks, "_HOOKS", [])
    seen: list[tuple[str, int]] = []

    def hook(index: Index) -> None:
        seen.append((index.path.name, index.generation))

    assert on_commit(hook) is hook
    on_commit(hook)  # twice: still one subscription
    index = Index.create(tmp_path / "ix", IndexConfig(embed=EmbedConfig(model="hash")))
    index.add_documents([Document("a", "Alpha text."), Document("b", "Beta text.")])
    index.delete_documents(["a"])
    assert seen == [("ix", 1), ("ix", 2)]


def test_ingest_command_updates_an_existing_graph_in_the_same_commit(tmp_path: Path) -> None:
    """A fresh `ragtune ingest` process never imports the graph by itself; it subscribes it before writing."""
    from ragtune.graph.store import load_graph, read_graph_manifest

    index = Index.create(tmp_path / "ix", IndexConfig(embed=EmbedConfig(model="hash")))
    index.add_documents([Document("a", "The Kelp Ecology Team met in Oslo.")])
    load_graph(index)
    doc = tmp_path / "late.txt"
    doc.write_text("The Deepwell Tank opened in 1998.", encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", "from ragtune.cli import main; main()", "ingest", str(doc), "--index", str(index.path)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert read_graph_manifest(index.path).generation == Index.open(index.path).generation == 2
