"""Usage errors on every command: one line on stderr, exit 2, never a traceback (issue #12 item 1).

The command tree is walked from the app itself, so a command added later is covered without editing this file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_tree import IDS, LEAVES, groups, takes_int, assert_usage_error, run_main


def test_the_walk_finds_every_command() -> None:
    names = set(IDS)
    assert {"search", "ingest", "delete", "ask", "compare", "finetune", "merge", "serve", "eval retrieval",
            "graph build", "graph show", "report", "runs", "synth", "demo"} <= names


@pytest.mark.parametrize("path,command", LEAVES, ids=IDS)
def test_unknown_option_is_one_line_exit_2(path, command, capsys) -> None:
    argv = path + ["--no-such-option"]
    assert_usage_error(*run_main(argv, capsys), argv)


@pytest.mark.parametrize("path,command", LEAVES, ids=IDS)
def test_bad_int_is_one_line_exit_2(path, command, capsys) -> None:
    int_options = [p for p in command.params if p.opts[0].startswith("-") and takes_int(p)]
    if not int_options:
        pytest.skip(f"{' '.join(path)} has no integer option")
    for option in int_options:
        argv = path + [option.opts[0], "abc"]
        assert_usage_error(*run_main(argv, capsys), argv)


@pytest.mark.parametrize("path,command", LEAVES, ids=IDS)
def test_missing_required_is_one_line_exit_2(path, command, capsys) -> None:
    if not any(p.required for p in command.params):
        pytest.skip(f"{' '.join(path)} has no required parameter")
    assert_usage_error(*run_main(path, capsys), path)


@pytest.mark.parametrize("argv", [
    ["search", "x", "--index", "I", "-k", "0"],
    ["search", "x", "--index", "I", "-k", "abc"],
    ["search", "x", "--bogus"],
    ["search", "x"],
    ["nosuch"],
    ["delete", "-rf.txt", "--index", "I"],
    ["eval", "nosuch"],
    ["graph", "nosuch"],
    ["--no-such-global"],
    ["search", "x", "--index"],
    ["search", "x", "--index", "I", "--mode"],
    ["ask", "q", "--index", "I", "--max-new-tokens", "0"],
])
def test_issue_examples(argv, capsys) -> None:
    assert_usage_error(*run_main(argv, capsys), argv)


def test_dash_argument_hint_names_the_double_dash(capsys) -> None:
    code, _out, err = run_main(["delete", "-rf.txt", "--index", "I"], capsys)
    assert code == 2 and "--" in err and "'ragtune delete --help'" in err


def test_control_characters_in_a_bad_option_stay_on_one_line(capsys) -> None:
    argv = ["search", "x", "--index", "I", "--bo\ngus\r"]
    assert_usage_error(*run_main(argv, capsys), argv)


@pytest.mark.parametrize("group", groups(), ids=lambda g: " ".join(g) or "ragtune")
def test_group_without_command_shows_help_and_exits_2(group, capsys) -> None:
    code, out, err = run_main(group, capsys)
    assert code == 2 and "Traceback" not in err and "Usage:" in out + err


def test_usage_error_through_the_console_script(tmp_path: Path) -> None:
    """The real entry point (a fresh interpreter), as the issue ran it."""
    done = subprocess.run([sys.executable, "-c", "from ragtune.cli import main; main()", "search", "x", "--index", str(tmp_path), "-k", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "-k" in done.stderr
