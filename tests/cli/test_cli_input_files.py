"""A questions or training file that is a folder or a FIFO is named as such (a FIFO was 'not found'; reading it
would wait for a writer forever): one line, exit 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_tree import one_error_line, run_main

from ragtune.config import EmbedConfig, IndexConfig
from ragtune.index import Index
from ragtune.types import Document


@pytest.fixture()
def index(tmp_path: Path) -> Path:
    Index.create(tmp_path / "idx", IndexConfig(embed=EmbedConfig(model="hash:64"))).add_documents(
        [Document("a.md", "The harbour opened in 1952.", "Harbour")])
    return tmp_path / "idx"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("command", ["ask", "compare", "finetune"])
@pytest.mark.parametrize("kind", ["fifo", "folder", "missing"])
def test_a_file_argument_that_is_no_regular_file(command, kind, index, tmp_path, capsys) -> None:
    path = tmp_path / "in.jsonl"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    what = "training file" if command == "finetune" else "questions file"
    argv = {"ask": ["ask", "--index", str(index), "--questions", str(path)],
            "compare": ["compare", "--index", str(index), "--questions", str(path), "--out", str(tmp_path / "run")],
            "finetune": ["finetune", "--train", str(path), "--out", str(tmp_path / "out")]}[command]
    code, _, err = run_main(argv, capsys)
    line = one_error_line(err)
    want = {"fifo": f"error: {what} {str(path)!r} is not a regular file (a pipe or a device): give a file",
            "folder": f"error: {what} {str(path)!r} is a directory, not a file",
            "missing": f"error: {what} not found: {str(path)!r}"}[kind]
    assert code == 2 and line == want, line
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()
