"""The pure parts of the Milvus backend (ragtune.store.milvus): its URI, expression literals, byte-cut texts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from ragtune.errors import ConfigError
from ragtune.uris import redact_uri

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")


def lit(value: str) -> str:
    """A Milvus expression string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def lit_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(lit(v) for v in values) + "]"


def cut(text: str, limit: int) -> str:
    """text cut to at most `limit` UTF-8 bytes (Milvus VARCHAR lengths are bytes)."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", errors="ignore")


def parse_milvus_uri(uri: str) -> tuple[str, str | None, str, str | None]:
    """(client uri, token, collection, db name) from milvus[+http|+https]://[USER:PASS@]HOST:PORT/COLLECTION[?db=D]."""
    parts = urlsplit(uri)
    scheme = "https" if parts.scheme.lower() == "milvus+https" else "http"
    if not parts.hostname:
        raise ConfigError(f"bad Milvus URI {redact_uri(uri)}: expected milvus://HOST:PORT/COLLECTION")
    collection = parts.path.strip("/")
    if not _NAME.match(collection):
        raise ConfigError(
            f"bad Milvus collection name {collection!r} in {redact_uri(uri)}: letters, digits and _ (not first: digit)"
        )
    try:
        port = parts.port or 19530
    except ValueError as exc:  # a port out of range or not a number
        raise ConfigError(f"bad Milvus URI {redact_uri(uri)}: {exc}") from None
    token = None
    if parts.username:
        token = unquote(parts.username) + (":" + unquote(parts.password) if parts.password else "")
    db = (parse_qs(parts.query).get("db") or [None])[0]
    return f"{scheme}://{parts.hostname}:{port}", token, collection, db
