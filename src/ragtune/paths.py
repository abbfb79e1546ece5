"""Where ragtune keeps its caches (converted models, demo artifacts)."""

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
