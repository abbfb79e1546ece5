"""The `ragtune` command. Each command lives in its own small module exposing `register(app)`.

Command modules import only light things at top level; heavy work is imported inside the command body,
so `ragtune --help` stays well under a second.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click
import typer

from ragtune.errors import RagtuneError

# Add a module name here when you add a command module (ragtune/cli/<name>.py with register(app)).
COMMAND_MODULES = [
    "ingest",
    "search",
    "evaluate",
    "report",
    "serve",
    "synth",
    "ask",
    "finetune",
    "graph",
    "compare",
    "demo",
]


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="ragtune",
        help="RAG, fine-tuning, or both? Build an index, fine-tune, compare every arm, serve the winner.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root(
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details to stderr."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    ) -> None:
        logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        if quiet:
            from ragtune.progress import set_progress

            set_progress(False)

    for name in COMMAND_MODULES:
        importlib.import_module(f"ragtune.cli.{name}").register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app and turns RagtuneError into one line and a non-zero exit."""
    app = build_app()
    try:
        result = app(args=argv, standalone_mode=False)
    except RagtuneError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        typer.secho("aborted", fg="red", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.secho("interrupted", fg="red", err=True)
        sys.exit(130)
    except Exception as exc:
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        typer.secho(f"error: invalid setting: {problems}", fg="red", err=True)
        sys.exit(2)
    if isinstance(result, int) and result != 0:
        sys.exit(result)
