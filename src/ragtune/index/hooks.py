"""Commit hooks: what else lives in an index folder follows the index's commits without the index knowing it.

A structure derived from the index (the entity graph in <index>/graph/) subscribes with `on_commit(hook)`; the
Index calls every hook with itself right after each commit, holding its writer lock. A hook must not raise for
its own failures (the commit is done); a derived structure that misses a commit catches up on its next use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CommitHook = Callable[[Any], None]
_HOOKS: list[CommitHook] = []


def on_commit(hook: CommitHook) -> CommitHook:
    """Call `hook(index)` after every index commit in this process (subscribing twice keeps one subscription)."""
    if hook not in _HOOKS:
        _HOOKS.append(hook)
    return hook


def run_commit_hooks(index: Any) -> None:
    """Called by the Index after its commit, with its writer lock held."""
    for hook in tuple(_HOOKS):
        hook(index)
