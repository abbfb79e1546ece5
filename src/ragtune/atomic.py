"""Atomic file writes: a temp file in the target's folder, then one rename — readers see the old file or the
new one, never half of it."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ragtune.errors import InputError


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write a file via a temp file in the same folder and an atomic rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; reports and exports are meant to be shared
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_jsonl_atomic(records: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """One JSON object per line, written atomically; an unwritable path is an InputError."""
    text = "".join(json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in records)
    try:
        return write_text_atomic(path, text)
    except OSError as exc:
        raise InputError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
