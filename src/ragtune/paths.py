"""Where ragtune keeps its caches (converted models, demo artifacts) and its user data (the runs database)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The user cache dir: $RAGTUNE_CACHE_DIR, else $XDG_CACHE_HOME/ragtune, else ~/.cache/ragtune."""
    explicit = os.environ.get("RAGTUNE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "ragtune"


def data_dir() -> Path:
    """Where user data lives (the runs database): $RAGTUNE_DATA_DIR, else the cache dir.

    Separate from the cache so tests (and users) can move the runs database without re-converting models."""
    explicit = os.environ.get("RAGTUNE_DATA_DIR")
    return Path(explicit).expanduser() if explicit else cache_dir()
