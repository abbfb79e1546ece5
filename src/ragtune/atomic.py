"""Atomic writes, with one fsync policy for every artifact ragtune writes.

A file is written to a temp file in its target's folder, fsync'd, renamed onto the target (`os.replace`), and
the folder is fsync'd: readers see the old file or the new one, never half of it, and after a power cut the
rename is durable. A folder artifact (adapter, checkpoint, run) is built under a temp name and swapped into
place the same way (`place_dir`). Index segments, the manifest, graph parts, ANN caches, exported ONNX graphs,
QA files and run files all go through here.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError, InputError


def fsync_dir(path: str | Path) -> None:
    """Make renames inside `path` durable (a no-op where folders cannot be opened, e.g. some network mounts)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path, mode: int = 0o644, suffix: str = ".tmp") -> Iterator[Path]:
    """A temp path beside `path` to write to (by any writer: numpy, faiss, torch.onnx...); on success it is
    fsync'd and renamed onto `path`, on an exception removed. `suffix` ends the temp name (some writers go by it).

    >>> with atomic_path("out/table.npy") as tmp:  # doctest: +SKIP
    ...     np.save(tmp, table)
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OSError(f"{_file_above(target)} is a file, not a folder", ) from None
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}{suffix}")
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is not None and Path(exc.filename).name == tmp.name:  # name the file the user asked for
            raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def _file_above(path: Path) -> Path:
    """The nearest parent of `path` that exists as a file (why its folder cannot be made)."""
    for parent in path.parents:
        if parent.exists():
            return parent
    return path.parent


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write bytes atomically (temp file, fsync, rename, fsync of the folder)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_lines_atomic(path: str | Path, lines: Iterable[str]) -> Path:
    """Write lines (each ending in a newline already) atomically, streaming: a big file is never one string."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line)
    return Path(path)


def write_jsonl_atomic(records: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """One JSON object per line, written atomically; an unwritable path is an InputError."""
    try:
        return write_lines_atomic(path, (json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records))
    except OSError as exc:
        raise InputError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc


def place_dir(tmp: str | Path, final: str | Path, *, overwrite: bool) -> None:
    """Rename a finished temporary folder into place; an existing folder is replaced only with overwrite (it is
    moved aside first, so `final` is always either the old folder or the new one)."""
    tmp, final = Path(tmp), Path(final)
    fsync_dir(tmp)
    if final.exists():
        if not overwrite:
            raise ConfigError(f"output folder already exists: {str(final)!r} (choose another or allow overwrite)")
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    fsync_dir(final.parent)
