"""API keys → callers with access groups, and a per-key rate limit.

Key entries are `KEY` or `KEY=group1,group2`, one per line in the keys file (blank lines and `#` comments
ignored) or separated by whitespace/semicolons in the env var. A caller holding the group `admin` sees every
document and may add, replace and delete documents; any other caller only reads.

Document visibility: a document whose metadata has no `groups` (or an empty list) is PUBLIC — every
authenticated caller sees it. Otherwise a caller sees it when they share at least one group with it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.access import GROUPS_FIELD, document_groups  # noqa: F401  (routes and service import them from here)
from ragtune.errors import ConfigError

ADMIN_GROUP = "admin"


@dataclass(frozen=True)
class Caller:
    """Who is calling: a stable identity (for rate limits and logs, never the key) and their groups."""

    identity: str
    groups: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups

    def can_see(self, metadata: Mapping[str, Any]) -> bool:
        """Whether a document/chunk with this metadata is visible to the caller (public, admin, or shared group)."""
        if self.is_admin:
            return True
        groups = document_groups(metadata)
        return not groups or bool(groups & self.groups)


OPEN_CALLER = Caller(identity="local", groups=frozenset({ADMIN_GROUP}))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_key_entries(entries: Iterable[str], origin: str) -> dict[str, Caller]:
    """sha256(key) → Caller from `KEY[=g1,g2]` entries; ConfigError naming the origin for a bad entry."""
    out: dict[str, Caller] = {}
    for raw in entries:
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        key, _, groups_text = entry.partition("=")
        key = key.strip()
        if len(key) < 8:
            raise ConfigError(f"API key in {origin} is too short (need >= 8 characters): {key[:3]!r}...")
        groups = frozenset(g.strip() for g in groups_text.split(",") if g.strip())
        digest = _digest(key)
        out[digest] = Caller(identity=f"key-{digest[:8]}", groups=groups)
    return out


class KeyStore:
    """The configured API keys. Keys are held only as sha256 digests."""

    def __init__(self, callers: Mapping[str, Caller]):
        self._callers = dict(callers)

    @classmethod
    def load(cls, keys_file: str | None, env_var: str | None) -> KeyStore:
        """Keys from the file (one entry per line) and the env var (entries split on whitespace or ';')."""
        callers: dict[str, Caller] = {}
        if keys_file:
            path = Path(keys_file).expanduser()
            if not path.is_file():
                raise ConfigError(f"API keys file not found: {keys_file!r}")
            callers.update(parse_key_entries(path.read_text(encoding="utf-8").splitlines(), keys_file))
        if env_var and os.environ.get(env_var, "").strip():
            entries = os.environ[env_var].replace(";", " ").split()
            callers.update(parse_key_entries(entries, f"${env_var}"))
        return cls(callers)

    @property
    def enabled(self) -> bool:
        return bool(self._callers)

    def __len__(self) -> int:
        return len(self._callers)

    def lookup(self, key: str | None) -> Caller | None:
        """The caller for a presented key; None when missing or unknown. Open mode (no keys): the local admin."""
        if not self._callers:
            return OPEN_CALLER
        if not key:
            return None
        return self._callers.get(_digest(key))


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The API key from `Authorization: Bearer KEY` (what the openai client sends) or `X-API-Key`."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return headers.get("x-api-key") or None


class RateLimiter:
    """Token bucket per identity: `per_minute` sustained, `burst` at once. Thread-safe."""

    def __init__(self, per_minute: float, burst: int):
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # identity -> (tokens, last refill time)
        self._lock = threading.Lock()

    def acquire(self, identity: str, now: float | None = None) -> float | None:
        """Take one token; None if allowed, else the seconds to wait before retrying."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(identity, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[identity] = (tokens - 1.0, now)
                return None
            self._buckets[identity] = (tokens, now)
            return (1.0 - tokens) / self.rate
