"""Helpers for CLI tests: the command tree walked from the app, and `ragtune ARGV` run in process."""

from __future__ import annotations

import typing

import typer

from ragtune.cli import build_app, main


def leaf_commands() -> list[tuple[list[str], object]]:
    """(argv prefix, click command) for every runnable command and sub-command of `ragtune`."""
    root = typer.main.get_command(build_app())
    leaves, stack = [], [([], root)]
    while stack:
        path, command = stack.pop()
        subcommands = getattr(command, "commands", None)
        if subcommands:
            stack.extend((path + [name], sub) for name, sub in subcommands.items())
        else:
            leaves.append((path, command))
    return sorted(leaves, key=lambda leaf: leaf[0])


def groups() -> list[list[str]]:
    root = typer.main.get_command(build_app())
    groups, stack = [], [([], root)]
    while stack:
        path, command = stack.pop()
        if getattr(command, "commands", None):
            groups.append(path)
            stack.extend((path + [name], sub) for name, sub in command.commands.items())
    return groups


def takes_int(param) -> bool:
    """Whether an option parses an int (click's `type`, or typer's annotation where typer keeps no `type`)."""
    if getattr(getattr(param, "type", None), "name", "") == "integer":
        return True
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    return annotation is int or (annotation is not None and set(typing.get_args(annotation)) == {int, type(None)})


LEAVES = leaf_commands()
IDS = [" ".join(path) for path, _ in LEAVES]


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """`ragtune ARGV` in process: (exit status, stdout, stderr)."""
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    """The one line stderr holds (and no traceback)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def assert_usage_error(code: int, out: str, err: str, argv: list[str]) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (argv, code, err)
    assert "Traceback" not in err + out, (argv, err)
    assert len(lines) == 1, (argv, err)
    assert lines[0].startswith("error: "), (argv, err)
