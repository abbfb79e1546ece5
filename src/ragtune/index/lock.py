"""The writer lock: one writer at a time may commit to an index folder (a `filelock` lock file).

Writers hold it only for the commit itself (reading the manifest, writing the new segment and manifest);
chunking and embedding happen before, without it. A writer that has to wait says so once.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from ragtune.errors import IndexBusyError, InputError, NotBuiltError

logger = logging.getLogger(__name__)

LOCK_NAME = ".write.lock"
TIMEOUT_ENV = "RAGTUNE_INDEX_LOCK_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 120.0

# Kept for callers of the old name: a busy index is an IndexBusyError (exit 6, HTTP 503).
IndexLockedError = IndexBusyError


def lock_timeout_s(timeout_s: float | None = None) -> float:
    """The wait limit: timeout_s if given, else $RAGTUNE_INDEX_LOCK_TIMEOUT_S, else 120 s."""
    if timeout_s is not None:
        return float(timeout_s)
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        return float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        return DEFAULT_TIMEOUT_S


def _say_waiting(message: str) -> None:
    logger.warning("%s", message)


@contextlib.contextmanager
def writer_lock(
    index_dir: Path, timeout_s: float | None = None, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the exclusive writer lock of index_dir; IndexBusyError after timeout_s of waiting.

    When the lock is taken, `on_wait` (default: a warning log line) hears "waiting for another writer on
    DIR…" once before the wait. The operating system releases the lock when its holder dies, so a killed
    writer never leaves it stuck.
    """
    if not Path(index_dir).is_dir():  # filelock would create the folder: no debris for a missing index
        raise NotBuiltError(f"no index at {index_dir}; build it with `ragtune ingest PATH --index {index_dir}`")
    limit = lock_timeout_s(timeout_s)
    lock = FileLock(Path(index_dir) / LOCK_NAME, thread_local=False)
    try:
        lock.acquire(timeout=0)
    except PermissionError:
        raise InputError(f"index {index_dir} is read-only here: cannot take its write lock ({LOCK_NAME}); "
                         "searching it works, writing needs write access") from None
    except Timeout:
        (on_wait or _say_waiting)(f"waiting for another writer on {index_dir} (up to {limit:.0f}s)…")
        try:
            lock.acquire(timeout=max(limit, 0.0), poll_interval=0.05)
        except Timeout:
            raise IndexBusyError(
                f"index {index_dir} is locked by another writer (waited {limit:.0f}s); "
                f"try again when it has finished, or raise ${TIMEOUT_ENV}",
                retry_after_s=5.0,
            ) from None
    try:
        yield
    finally:
        lock.release()
