"""The `ragtune` command. Each command lives in its own small module exposing `register(app)`.

Command modules import only light things at top level; heavy work is imported inside the command body,
so `ragtune --help` stays well under a second.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from ragtune.cli.common import one_line
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
    "tune",
    "demo",
    "reindex",
    "finetune_embedder",
]


class _OneLineFormatter(logging.Formatter):
    """Log messages with control characters escaped: a file name holding a newline cannot split a line.

    Only the message line: a --verbose traceback after it keeps its own lines.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return one_line(super().formatMessage(record))


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
        handler = logging.StreamHandler()
        handler.setFormatter(_OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
        logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])
        from ragtune.progress import hide_library_bars, set_progress

        hide_library_bars()  # ragtune's own bars only (no tqdm "Loading weights" beside them)
        if quiet:
            set_progress(False)

    for name in COMMAND_MODULES:
        importlib.import_module(f"ragtune.cli.{name}").register(app)
    return app


def _click_classes(name: str) -> tuple[type, ...]:
    """The exception class `name` of every click the installed typer may raise.

    typer >= 0.2x vendors click as `typer._click`, whose classes are not click's; older typer raises click's own.
    """
    found: list[type] = []
    for module_name in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, name, None)
        if isinstance(cls, type) and cls not in found:
            found.append(cls)
    return tuple(found)


_NO_ARGS_HELP = _click_classes("NoArgsIsHelpError")
_USAGE_ERRORS = _click_classes("UsageError")
_NO_SUCH_OPTION = _click_classes("NoSuchOption")
_CLICK_ERRORS = _click_classes("ClickException")
_ABORTS = _click_classes("Abort")


def usage_error_line(exc: Exception) -> str:
    """One line for a usage error: the message, and where to look for help (no usage block, no traceback)."""
    ctx = getattr(exc, "ctx", None)
    hint = ""
    if ctx is not None:
        hint = f" (see '{ctx.command_path} --help')"
        takes_arguments = any(getattr(p, "param_type_name", "") == "argument" for p in ctx.command.params)
        if isinstance(exc, _NO_SUCH_OPTION) and takes_arguments:
            hint = f" (an argument that starts with '-' goes after '--'; see '{ctx.command_path} --help')"
    return one_line(f"error: {exc.format_message()}{hint}")


def _fail(line: str, code: int) -> None:
    typer.secho(one_line(line), fg="red", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app and turns every expected failure into one line and a non-zero exit.

    Exit statuses: 1 some input was skipped, 2 usage / bad input or configuration, 3 not built, 4 extra missing,
    5 model backend failure, 6 index busy, 130 interrupted.
    """
    app = build_app()
    try:
        result = app(args=argv, prog_name="ragtune", standalone_mode=False)
    except RagtuneError as exc:
        _fail(f"error: {exc}", exc.exit_code)
    except _NO_ARGS_HELP as exc:  # bare `ragtune` or `ragtune eval`: the help, as a usage error
        exc.show()
        sys.exit(2)
    except _USAGE_ERRORS as exc:
        _fail(usage_error_line(exc), 2)
    except _ABORTS:
        _fail("aborted", 130)
    except _CLICK_ERRORS as exc:
        _fail(f"error: {exc.format_message()}", exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except UnicodeEncodeError as exc:  # undecodable bytes in an argument or file name arrive as surrogates
        if exc.reason != "surrogates not allowed":
            raise
        context = exc.object[max(0, exc.start - 40) : exc.end + 40]
        _fail(f"error: a file name or argument is not valid UTF-8 text: {ascii(context)}", 2)
    except UnicodeDecodeError as exc:  # a file read as text that is not UTF-8 (readers that can name it do)
        bad = exc.object[exc.start] if exc.start < len(exc.object) else 0
        _fail(f"error: a file given is not valid UTF-8 text (byte 0x{bad:02x} at offset {exc.start}); save it as "
              "UTF-8", 2)
    except RecursionError:  # JSON nested deeper than Python's parser goes (about 1,000 levels)
        _fail("error: an input file holds JSON nested too deeply to read; flatten it", 2)
    except OSError as exc:  # a path the user named cannot be read or written: one line, not a traceback
        logging.getLogger(__name__).debug("OS error", exc_info=True)
        where = f": {exc.filename}" if exc.filename else ""
        _fail(f"error: {exc.strerror or exc}{where}", 2)
    except Exception as exc:
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        from ragtune.config import validation_message

        from ragtune.cli.common import ANSWER_FLAGS

        _fail(f"error: invalid setting: {validation_message(exc, ANSWER_FLAGS)}", 2)
    if result == 130:  # typer turns Ctrl-C into an exit status of 130 before it reaches here: say so, as above
        _fail("interrupted", 130)
    if isinstance(result, int) and result != 0:
        sys.exit(result)
