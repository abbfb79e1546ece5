"""The writer lock: one process at a time may commit to an index folder (fcntl.flock on a lock file)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ragtune.errors import RagtuneError

LOCK_NAME = ".write.lock"


class IndexLockedError(RagtuneError):
    """Another process holds the index's writer lock."""

    exit_code = 5


@contextlib.contextmanager
def writer_lock(index_dir: Path, timeout_s: float = 30.0) -> Iterator[None]:
    """Hold the exclusive writer lock of index_dir; IndexLockedError after timeout_s of waiting.

    The lock is released by the kernel when the process dies, so a killed writer never leaves it stuck.
    """
    path = Path(index_dir) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexLockedError(f"index {index_dir} is locked by another writer (waited {timeout_s:.0f}s)")
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
