"""The one progress helper. Library code reports progress through it; callers can silence it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

_enabled = True


def set_progress(enabled: bool) -> None:
    """Turn progress bars on or off for this process (the CLI's --quiet, tests)."""
    global _enabled
    _enabled = enabled


def progress_enabled() -> bool:
    return _enabled and os.environ.get("RAGTUNE_NO_PROGRESS", "") == ""


class _NullTask:
    def advance(self, n: float = 1) -> None:
        pass

    def update(self, **kwargs: Any) -> None:
        pass


class _RichTask:
    def __init__(self, progress: Any, task_id: Any):
        self._progress = progress
        self._task_id = task_id

    def advance(self, n: float = 1) -> None:
        self._progress.advance(self._task_id, n)

    def update(self, **kwargs: Any) -> None:
        """Update total=, description= or extra text fields (e.g. info="loss 1.23")."""
        self._progress.update(self._task_id, **kwargs)


@contextlib.contextmanager
def progress_task(description: str, total: float | None = None) -> Iterator[_NullTask | _RichTask]:
    """A progress bar with ETA on stderr; a no-op when progress is disabled.

    >>> with progress_task("Embedding", total=100) as task:
    ...     task.advance(10)
    """
    if not progress_enabled():
        yield _NullTask()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task_id = progress.add_task(description, total=total, info="")
        yield _RichTask(progress, task_id)
