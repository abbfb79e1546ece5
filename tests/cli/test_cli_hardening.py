"""Failures found by a hostile first use (issue #12 items 6 and 12): one clear line, the right exit, up front."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import typer
from cli_tree import one_error_line, run_main

from ragtune.cli import build_app


@pytest.fixture()
def questions(tmp_path: Path) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "How many leave days?", "answer": "thirty"}) + "\n")
    return path


def test_compare_out_under_a_file_is_one_line_exit_2(tmp_path: Path, questions: Path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    argv = ["compare", "--index", str(tmp_path / "no-index"), "--questions", str(questions),
            "--out", str(blocker / "run"), "--arms", "base"]
    code, _out, err = run_main(argv, capsys)
    assert code == 2
    line = one_error_line(err)
    assert "--out" in line and "a-file is a file, not a folder" in line
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize(("text", "said"), [
    ('{"question": "Who?"}\nnot json\n', "2 malformed question(s): "),
    ("", "no questions in "),
])
def test_compare_questions_file_errors_speak_of_questions(tmp_path: Path, text: str, said: str, capsys) -> None:
    """Before: "no valid training examples in ...", the training loader's words, for compare's evaluation questions."""
    path = tmp_path / "q.jsonl"
    path.write_text(text)
    code, _out, err = run_main(["compare", "--index", str(tmp_path / "no-index"), "--questions", str(path),
                                "--out", str(tmp_path / "run"), "--arms", "base"], capsys)
    line = one_error_line(err)
    assert code == 2 and said in line and "training" not in line
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


def test_compare_out_that_is_a_file_is_one_line_exit_2(tmp_path: Path, questions: Path, capsys) -> None:
    (tmp_path / "run").write_text("x")
    code, _out, err = run_main(["compare", "--index", str(tmp_path), "--questions", str(questions),
                                "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "exists and is not a folder" in one_error_line(err)


@pytest.mark.parametrize("flag", ["--adapter", "--raft-adapter"])
def test_compare_rejects_a_folder_that_is_not_an_adapter(tmp_path: Path, questions: Path, flag, capsys) -> None:
    not_adapter = tmp_path / "just-a-folder"
    not_adapter.mkdir()
    code, _out, err = run_main(["compare", "--index", str(tmp_path / "no-index"), "--questions", str(questions),
                                "--out", str(tmp_path / "run"), flag, str(not_adapter)], capsys)
    assert code == 2
    assert f"{flag} {not_adapter}: not a LoRA adapter folder (no adapter_config.json)" in one_error_line(err)
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


def test_ask_rejects_a_folder_that_is_not_an_adapter(tmp_path: Path, capsys) -> None:
    code, _out, err = run_main(["ask", "q", "--closed-book", "--adapter", str(tmp_path)], capsys)
    assert code == 2 and "not a LoRA adapter folder" in one_error_line(err)


def test_ask_adapter_help_names_a_real_command() -> None:
    command = typer.main.get_command(build_app()).commands["ask"]
    help_text = next(p.help for p in command.params if p.name == "adapter")
    assert "ragtune finetune" in help_text and "ragtune train)" not in help_text


@pytest.mark.parametrize("argv", [
    ["ask", "--questions", "{dir}", "--closed-book"],
    ["compare", "--index", "{dir}", "--questions", "{dir}", "--out", "{dir}/run"],
    ["finetune", "--train", "{dir}", "--out", "{dir}/adapter"],
])
def test_a_questions_or_train_file_that_is_a_directory_says_so(tmp_path: Path, argv, capsys) -> None:
    code, _out, err = run_main([a.format(dir=tmp_path) for a in argv], capsys)
    line = one_error_line(err)
    assert code == 2 and "is a directory" in line and "not found" not in line


def test_serve_on_a_busy_port_says_so_before_serving(tmp_path: Path, capsys) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code, out, err = run_main(["serve", "--index", str(tmp_path / "no-index"), "--port", str(port)], capsys)
    assert code == 2
    assert f"port {port} on 127.0.0.1 is in use" in one_error_line(err)
    assert "serving" not in out + err and "loading" not in out + err


def test_serve_rejects_a_folder_that_is_not_an_adapter(tmp_path: Path, capsys) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    code, _out, err = run_main(["serve", "--arm", "ft", "--adapter", str(tmp_path), "--port", str(port)], capsys)
    assert code == 2 and "not a LoRA adapter folder" in one_error_line(err)


def test_search_hit_line_of_a_file_with_a_newline_in_its_name_stays_one_line(tmp_path: Path, capsys) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave\npolicy.txt").write_text("Employees get thirty days of paid leave per year.\n")
    code, _out, _err = run_main(["ingest", str(docs), "--index", str(tmp_path / "ix"), "--embedder", "hash"], capsys)
    assert code == 0
    code, out, _err = run_main(["search", "paid leave", "--index", str(tmp_path / "ix"), "--mode", "bm25"], capsys)
    assert code == 0
    first, snippet = out.splitlines()[:2]
    assert first.startswith("  1.") and "leave\\npolicy.txt" in first and "thirty days" in snippet


@pytest.mark.parametrize("query", ["", "  \t"])
def test_search_with_a_blank_query_is_one_line_exit_2(tmp_path: Path, query: str, capsys) -> None:
    """As the server's /v1/search answers 400: before, a blank query listed hits ranked by nothing."""
    code, _out, err = run_main(["search", query, "--index", str(tmp_path / "no-index")], capsys)
    assert code == 2 and one_error_line(err) == "error: no query: pass the text to search for"


def test_runs_with_a_db_that_is_not_one_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("not sqlite, just text that is long enough to have a header" * 4)
    code, _out, err = run_main(["runs", "--db", str(tmp_path / "notes.txt")], capsys)
    assert code == 2 and "not a ragtune runs database" in one_error_line(err)


def test_runs_with_a_missing_db_creates_nothing(tmp_path: Path, capsys) -> None:
    code, _out, err = run_main(["runs", "--db", str(tmp_path / "new" / "runs.sqlite")], capsys)
    assert code == 2 and "no runs database there" in one_error_line(err)
    assert not (tmp_path / "new").exists()


def test_synth_out_under_a_file_is_refused_before_any_work(tmp_path: Path, capsys) -> None:
    (tmp_path / "a-file").write_text("x")
    code, _out, err = run_main(["synth", "--index", str(tmp_path / "no-index"), "--out",
                                str(tmp_path / "a-file" / "qa.jsonl"), "--rules-only"], capsys)
    assert code == 2 and "a-file is a file, not a folder" in one_error_line(err)


@pytest.mark.parametrize("argv", [["search", "\udcff", "--index", "{dir}"], ["ask", "caf\udce9?", "--closed-book"]])
def test_undecodable_argv_text_is_one_line_exit_2(tmp_path: Path, argv, capsys) -> None:
    code, _out, err = run_main([a.format(dir=tmp_path) for a in argv], capsys)
    assert code == 2 and "is not valid UTF-8 text" in one_error_line(err)


def test_a_file_name_that_is_not_utf8_gets_an_escaped_id_and_the_rest_is_ingested(tmp_path: Path, capsys) -> None:
    """Before: the name's lone surrogate reached the content hash and stopped the whole ingest (exit 2)."""
    import os

    docs = tmp_path / "docs"
    docs.mkdir()
    with open(os.path.join(os.fsencode(docs), b"bad\xffname.txt"), "wb") as fh:
        fh.write(b"Employees get thirty days of paid leave per year.\n")
    (docs / "good.txt").write_text("The canteen opens at noon.\n")
    code, out, err = run_main(["ingest", str(docs), "--index", str(tmp_path / "ix"), "--embedder", "hash"], capsys)
    assert code == 0 and "Traceback" not in err, err
    assert "2 added" in out
    from ragtune.index import Index

    docs_in_index = {d.doc_id: d for d in Index.open(tmp_path / "ix").documents()}
    assert set(docs_in_index) == {"bad\\xffname.txt", "good.txt"}  # a backslash, then "xff"
    code, out, _err = run_main(["search", "paid leave", "--index", str(tmp_path / "ix"), "--mode", "bm25", "-k", "1"],
                               capsys)
    assert code == 0 and "  bad\\xffname.txt  " in out.splitlines()[0]


@pytest.mark.parametrize("mode", ["bogus", "bo gus", "", "-x"])
def test_an_unknown_retrieval_mode_is_one_clean_line_exit_2(tmp_path: Path, mode: str, capsys) -> None:
    """Before: a mode failing the name pattern printed pydantic's multi-line message with literal \\n."""
    from ragtune.config import EmbedConfig, IndexConfig
    from ragtune.index import Index
    from ragtune.types import Document

    Index.create(tmp_path / "ix", IndexConfig(embed=EmbedConfig(model="hash:64"))).add_documents([Document("a", "A.")])
    code, _out, err = run_main(["search", "x", "--index", str(tmp_path / "ix"), f"--mode={mode}"], capsys)
    line = one_error_line(err)
    assert code == 2 and "\\n" not in line and "pydantic" not in line
    assert line == f"error: unknown retrieval mode {mode!r}: choose one of dense, bm25, hybrid, hybrid-convex, " \
                   "dense+rerank, bm25+rerank, hybrid+rerank, hybrid-convex+rerank, graph-local, graph-global, " \
                   "graph-hybrid"


def test_an_invalid_setting_is_one_clean_line_exit_2(tmp_path: Path, capsys) -> None:
    code, _out, err = run_main(["ingest", str(tmp_path), "--index", str(tmp_path / "ix"), "--chunk-tokens", "3"], capsys)
    line = one_error_line(err)
    assert code == 2 and "\\n" not in line and "errors.pydantic.dev" not in line
    assert line == "error: bad chunking options: --chunk-tokens: Input should be greater than or equal to 16 (got 3)"


def test_validation_message_is_one_line_per_error():
    from pydantic import ValidationError

    from ragtune.config import RetrieveConfig, validation_message

    with pytest.raises(ValidationError) as info:
        RetrieveConfig(mode="bo gus", rrf_k=0, nope=1)
    message = validation_message(info.value)
    assert "\n" not in message
    assert message.startswith("mode: String should match pattern") and "(got 'bo gus')" in message
    assert "rrf_k: Input should be greater than or equal to 1 (got 0)" in message
    assert message.endswith("nope: Extra inputs are not permitted (got 1)")


@pytest.mark.parametrize("command", [["search", "x", "--index", "IX"], ["ask", "x", "--index", "IX"],
                                     ["compare", "--index", "IX", "--questions", "Q", "--out", "OUT"],
                                     ["serve", "--index", "IX"], ["eval", "retrieval", "IX"]])
def test_rerank_settings_without_a_rerank_mode_are_one_line_exit_2(tmp_path: Path, command, capsys) -> None:
    """--rerank-depth / --rerank-weight with a mode that does not rerank would do nothing: refused up front, before
    any index, question file or output folder is looked at (none of these exist)."""
    argv = [str(tmp_path / a) if a in ("IX", "Q", "OUT") else a for a in command]
    code, _out, err = run_main([*argv, "--mode", "hybrid", "--rerank-depth", "5"], capsys)
    assert code == 2
    assert one_error_line(err) == ("error: --rerank-depth applies to a +rerank mode only (got --mode hybrid; "
                                    "e.g. --mode hybrid-convex+rerank)")
    code, _out, err = run_main([*argv, "--rerank-depth", "5", "--rerank-weight", "0.5"], capsys)
    assert code == 2 and "--rerank-depth and --rerank-weight apply to a +rerank mode only" in one_error_line(err)
    assert not (tmp_path / "OUT").exists() and not (tmp_path / "OUT.partial").exists()


@pytest.mark.parametrize(("flag", "value"), [("--rerank-depth", "1"), ("--rerank-depth", "201"),
                                             ("--rerank-weight", "1.5"), ("--rerank-weight", "-0.1")])
def test_rerank_settings_out_of_range_are_one_line_exit_2(tmp_path: Path, flag, value, capsys) -> None:
    code, _out, err = run_main(["search", "x", "--index", str(tmp_path), "--mode", "bm25+rerank", flag, value], capsys)
    assert code == 2 and f"Invalid value for '{flag}'" in one_error_line(err)


def test_rerank_settings_in_a_config_need_a_rerank_mode() -> None:
    from pydantic import ValidationError

    from ragtune.serve.settings import ServeSettings
    from ragtune.workflows.compare import CompareConfig

    with pytest.raises(ValidationError, match="rerank_weight applies to a \\+rerank mode only"):
        ServeSettings(retrieve_mode="dense", rerank_weight=0.5)
    with pytest.raises(ValidationError, match="rerank_depth applies to a \\+rerank mode only"):
        CompareConfig(index="i", questions="q", out="o", rerank_depth=4)
    config = CompareConfig(index="i", questions="q", out="o", mode="bm25+rerank", rerank_depth=4)
    assert config.retrieve_options() == {"rerank_depth": 4}
    assert ServeSettings(retrieve_mode="hybrid").retrieve_options() == {}
