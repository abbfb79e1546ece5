"""A bad option value's error names the flag the user typed, never the settings field behind it
(`--rate-limit`, not `rate_limit_per_minute`); a PostgreSQL URI must name its collection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_tree import one_error_line, run_main


@pytest.mark.parametrize(("argv", "flag"), [
    (["--rate-limit", "0"], "--rate-limit"), (["--rate-burst", "0"], "--rate-burst"),
    (["--request-timeout", "0"], "--request-timeout"), (["--max-batch", "0"], "--max-batch"),
    (["--queue-size", "0"], "--queue-size"), (["--batch-wait-ms", "-1"], "--batch-wait-ms"), (["-k", "50"], "-k"),
])
def test_serve_option_errors_name_the_flag(argv, flag, tmp_path, capsys) -> None:
    code, _, err = run_main(["serve", "--index", str(tmp_path / "none"), "--port", "0", *argv], capsys)
    line = one_error_line(err)
    assert code == 2 and line.startswith(f"error: bad serve option: {flag}: "), line
    assert "_" not in line.split(":")[1], line  # no field name


@pytest.mark.parametrize(("argv", "flag"), [
    (["--lr", "0"], "--lr"), (["--threads", "0"], "--threads"), (["--grad-accum", "0"], "--grad-accum"),
    (["--max-len", "1"], "--max-len"), (["--lora-r", "0"], "--lora-r"), (["--holdout", "1"], "--holdout"),
    (["--holdout", "-0.5"], "--holdout"), (["--p-oracle", "2"], "--p-oracle"), (["--distractors", "-1"], "--distractors"),
])
def test_finetune_option_errors_name_the_flag(argv, flag, tmp_path, capsys) -> None:
    train = tmp_path / "qa.jsonl"
    train.write_text(json.dumps({"question": "Who?", "answer": "Ilse", "context": "Ilse is the master."}) + "\n")
    code, _, err = run_main(["finetune", "--train", str(train), "--out", str(tmp_path / "out"), *argv], capsys)
    line = one_error_line(err)
    assert code == 2 and flag in line, line
    assert not any(name in line for name in ("test_fraction", "num_threads", "grad_accum", "max_len", "lora_r",
                                              "lora_alpha", "p_oracle")), line
    assert not (tmp_path / "out").exists()


def test_postgres_uri_without_a_collection_is_refused(tmp_path: Path, capsys) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The harbour opened in 1952.")
    code, _, err = run_main(["ingest", str(docs), "--index", "postgresql://me:secret@127.0.0.1:1/rag",
                             "--embedder", "hash:16"], capsys)
    line = one_error_line(err)
    assert code == 2 and "names no collection: add ?collection=NAME" in line and "secret" not in line, line


@pytest.mark.parametrize(("argv", "want"), [
    (["--chunk-tokens", "5"], "--chunk-tokens: "), (["--overlap", "-1"], "--overlap: "),
    (["--overlap", "500"], "the overlap (500 tokens) must be smaller than a chunk (200 tokens)"),
])
def test_chunking_option_errors_name_the_flag(argv, want, tmp_path: Path, capsys) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The harbour opened in 1952.")
    code, _, err = run_main(["ingest", str(docs), "--index", str(tmp_path / "idx"), "--embedder", "hash:16", *argv],
                            capsys)
    line = one_error_line(err)
    assert code == 2 and want in line and "_tokens" not in line, line
    assert not (tmp_path / "idx").exists()
