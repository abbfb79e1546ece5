"""Hypothesis drives `ragtune` with random arguments that must be rejected (issue #12).

Every argv is invalid by construction (an unknown option or a non-integer for an int option placed first, so
nothing can consume it as a value; or a required option left out), so no command ever runs and no model loads.
Each must: exit 2, print one line on stderr, no traceback, and leave the index folder and its parent untouched.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_tree import LEAVES, takes_int, assert_usage_error, run_main

from ragtune.cli import main

# Any text at all: control characters, newlines, and the surrogates that undecodable argv bytes become.
TEXT = st.text(st.one_of(st.characters(blacklist_categories=("Cs",)), st.characters(min_codepoint=0xDC80,
                                                                                     max_codepoint=0xDCFF)),
               max_size=12)
NOT_AN_INT = TEXT.filter(lambda s: not s.strip().lstrip("+-").isdigit() and s.strip() != "")


def _tree_hash(root: Path) -> str:
    """Names, sizes and contents of every file under root (a rejected command must change none of them)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A folder holding a built index and its graph (hashing embedder, rules: no model) and a document, the only
    things a command could touch."""
    root = tmp_path_factory.mktemp("fuzz")
    docs = root / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Employees get thirty days of paid leave per year.\n")
    for argv in (["ingest", str(docs), "--index", str(root / "ix"), "--embedder", "hash"],
                 ["graph", "build", "--index", str(root / "ix")],  # graph and communities cached now:
                 ["graph", "show", "--index", str(root / "ix")]):  # the first query would write them
        try:
            main(argv)
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
    assert (root / "ix").is_dir()
    return root


def _options(command) -> list[str]:
    return [opt for p in command.params if p.param_type_name == "option" for opt in p.opts]


@st.composite
def rejected_argv(draw, root: Path) -> list[str]:
    """A command path, then what makes it a usage error, then a random tail of real option names and values."""
    path, command = draw(st.sampled_from(LEAVES))
    names = [o for o in _options(command) if o != "--help"]
    value = st.one_of(TEXT, st.just(str(root / "ix")), st.just(str(root / "docs")), st.just(str(root)))
    tail = draw(st.lists(st.one_of(st.sampled_from(names) if names else TEXT, value), max_size=6))
    int_options = [o for p in command.params if p.param_type_name == "option" and takes_int(p) for o in p.opts]
    required = {o for p in command.params if p.required and p.param_type_name == "option" for o in p.opts}
    kinds = ["unknown option", "unknown command"] + (["bad int"] if int_options else []) + (
        ["missing required"] if required else [])
    kind = draw(st.sampled_from(kinds))
    prefix = draw(st.sampled_from([[], ["-q"], ["-v"]]))
    if kind == "unknown option":
        bad = "--" + draw(st.text("abcdefghijklmnopqrstuvwxyz-\n", min_size=1, max_size=10)) + "-zz"
        return prefix + path + [bad] + tail
    if kind == "unknown command":
        return prefix + ["zz" + draw(TEXT)] + tail
    if kind == "bad int":
        return prefix + path + [draw(st.sampled_from(int_options)), draw(NOT_AN_INT)] + tail
    # missing required: the tail may hold anything but the required option's names (and no `--name=value`).
    tail = [t for t in tail if t not in required and not any(t.startswith(r + "=") for r in required)]
    return prefix + path + tail


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_rejected_commands_change_nothing(workspace: Path, data, capsys) -> None:
    argv = data.draw(rejected_argv(workspace))
    before = _tree_hash(workspace)
    assert_usage_error(*run_main(argv, capsys), argv)
    assert _tree_hash(workspace) == before, argv


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_rejected_commands_in_a_fresh_interpreter(workspace: Path, data) -> None:
    argv = data.draw(rejected_argv(workspace).filter(lambda a: all("\x00" not in t for t in a)))
    before = _tree_hash(workspace)
    done = subprocess.run([sys.executable, "-c", "from ragtune.cli import main; main()", *argv],
                          capture_output=True, text=True, timeout=120, cwd=workspace,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 2, (argv, done.stderr)
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, (argv, done.stderr)
    assert _tree_hash(workspace) == before, argv


MODES = ["dense", "bm25", "hybrid", "graph-local", "graph-global", "graph-hybrid"]
DOCUMENTED_EXITS = {0, 1, 2, 3, 4, 5, 6}


@st.composite
def read_or_rejected_argv(draw, root: Path) -> list[str]:
    """Commands that run for real but only read the index (search, graph show, report, runs), or writes that must
    be rejected (delete of an unknown id, ingest of a missing path), with random values."""
    ix = str(root / "ix")
    kind = draw(st.sampled_from(["search", "graph show", "report", "runs", "delete", "ingest"]))
    if kind == "search":
        argv = ["search", draw(TEXT), "--index", ix, "--mode", draw(st.one_of(st.sampled_from(MODES), TEXT)),
                "-k", str(draw(st.integers(-3, 50)))]
        argv += [x for f in draw(st.lists(TEXT, max_size=2)) for x in ("--filter", f)]
        return argv + draw(st.sampled_from([[], ["--json"]]))
    if kind == "graph show":
        return ["graph", "show", "--index", ix] + draw(st.sampled_from([[], ["--json"]])) + (
            ["--entity", draw(TEXT)] if draw(st.booleans()) else [])
    if kind == "report":
        return ["report", draw(st.sampled_from([ix, str(root / "docs"), str(root / "nothing")]))]
    if kind == "runs":
        return ["runs", "--db", str(root / "docs" / "a.txt")]
    if kind == "delete":
        return ["delete", "zz" + draw(TEXT), "--index", ix]
    return ["ingest", str(root / ("missing" + draw(TEXT).replace("/", ""))), "--index", ix]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_read_commands_never_trace_back_or_change_the_index(workspace: Path, data, capsys) -> None:
    argv = data.draw(read_or_rejected_argv(workspace))
    before = _tree_hash(workspace)
    code, out, err = run_main(argv, capsys)
    assert code in DOCUMENTED_EXITS, (argv, code, err)
    assert "Traceback" not in out + err, (argv, err)
    if code != 0:
        assert len([line for line in err.splitlines() if line.strip()]) == 1, (argv, err)
    assert _tree_hash(workspace) == before, argv  # reads and rejected writes change nothing
