"""Metadata filters from the command line (the row masks themselves: ragtune.index.metadata)."""

from __future__ import annotations

from collections.abc import Sequence

from ragtune.errors import InputError


def parse_filter_args(items: Sequence[str]) -> dict[str, list[str]]:
    """CLI `--filter key=value` (repeatable; the same key twice means either value) -> filters dict."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"bad --filter {item!r}: expected key=value")
        out.setdefault(key.strip(), []).append(value.strip())
    return out
