"""What the workflow tests share: a hashing-embedder index of a few documents and their questions file, answered
by the tiny random LM, in a private cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.config import EmbedConfig, IndexConfig
from ragtune.index import Index


@pytest.fixture()
def corpus(tmp_path: Path, tiny_lm_dir: Path, monkeypatch):
    """corpus(docs, questions) -> {"index", "questions", "model", "tmp"}: the index and questions.jsonl in tmp_path."""
    monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path / "cache"))

    def make(docs: list, questions: list[dict]) -> dict:
        Index.create(tmp_path / "index", IndexConfig(embed=EmbedConfig(model="hash:64"))).add_documents(docs)
        path = tmp_path / "questions.jsonl"
        path.write_text("".join(json.dumps(q) + "\n" for q in questions))
        return {"index": str(tmp_path / "index"), "questions": str(path), "model": str(tiny_lm_dir), "tmp": tmp_path}

    return make
