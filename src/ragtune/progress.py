"""The one progress helper. Library code reports progress through it; callers can silence it."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

_enabled = True


def set_progress(enabled: bool) -> None:
    """Turn progress bars on or off for this process (the CLI's --quiet, tests), ours and the model libraries'
    ("Loading weights" from transformers, downloads from huggingface_hub)."""
    global _enabled
    _enabled = enabled
    _set_library_bars(enabled)


def hide_library_bars() -> None:
    """Keep the model libraries' own tqdm bars off (transformers' "Loading weights" on every model load,
    huggingface_hub's downloads) while ragtune's bars stay as set_progress left them: the CLI's choice, so that
    a command shows one kind of bar and a log holds no half-drawn tqdm lines."""
    _set_library_bars(False)


_HUB_SWITCH = "HF_HUB_DISABLE_PROGRESS_BARS"
_set_hub_switch = False  # whether the environment switch is ours to take back


def _set_library_bars(enabled: bool) -> None:
    """transformers and huggingface_hub draw their own tqdm bars. Libraries already imported are switched now;
    ones imported later read HF_HUB_DISABLE_PROGRESS_BARS at import, so it is set while bars are off (never
    when the user set it: theirs wins)."""
    global _set_hub_switch
    if not enabled and _HUB_SWITCH not in os.environ:
        os.environ[_HUB_SWITCH] = "1"
        _set_hub_switch = True
    elif enabled and _set_hub_switch:
        os.environ.pop(_HUB_SWITCH, None)
        _set_hub_switch = False
    transformers_logging = sys.modules.get("transformers.utils.logging")
    hub_tqdm = sys.modules.get("huggingface_hub.utils.tqdm")
    with warnings.catch_warnings():  # re-enabling under a user's HF_HUB_DISABLE_PROGRESS_BARS=1 only warns
        warnings.simplefilter("ignore")
        if transformers_logging is not None:
            (transformers_logging.enable_progress_bar if enabled else transformers_logging.disable_progress_bar)()
        elif hub_tqdm is not None:
            (hub_tqdm.enable_progress_bars if enabled else hub_tqdm.disable_progress_bars)()


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


class Stages:
    """Numbered stages of a long command on stderr ("[2/5] Training adapters"), silenced with the bars.

    >>> stages = Stages(["Indexing", "Comparing"])
    >>> stages.line("Comparing")
    '[2/2] Comparing'
    """

    def __init__(self, names: list[str]):
        self.names = list(names)

    def line(self, name: str) -> str:
        return f"[{self.names.index(name) + 1}/{len(self.names)}] {name}"

    def start(self, name: str) -> None:
        """Announce stage `name` (one of the names given) unless progress is off."""
        if progress_enabled():
            print(self.line(name), file=sys.stderr, flush=True)
