"""Which storage an `--index` value names: a folder path (the default folder index) or a URI whose scheme picks
a VectorStore backend.

    my-index                                          -> the folder index (ragtune.index.Index), unchanged
    milvus://HOST:PORT/COLLECTION                     -> Milvus (ragtune[milvus]); milvus+https:// for TLS
    postgresql://USER[:PASS]@HOST:PORT/DB?collection=NAME -> PostgreSQL + pgvector (ragtune[postgres])

>>> is_store_uri("runs/index"), is_store_uri("milvus://127.0.0.1:19530/docs")
(False, True)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePath
from urllib.parse import urlsplit, urlunsplit

from ragtune.errors import ConfigError
from ragtune.registry import Registry
from ragtune.store.base import VectorStore

StoreFactory = Callable[[str], VectorStore]  # (uri) -> an open store (connects; creates nothing)
STORE_SCHEMES: Registry[StoreFactory] = Registry("index URI scheme")

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*)://")


def register_store_scheme(scheme: str, factory: StoreFactory) -> None:
    """Make `scheme://...` index values open `factory(uri)`; ConfigError if the scheme is taken."""
    STORE_SCHEMES.register(scheme, factory)


def uri_scheme(value: str) -> str | None:
    """The scheme of `value` if it looks like a URI (`scheme://...`), else None (a folder path)."""
    match = _SCHEME.match(str(value))
    return match.group(1).lower() if match else None


_COLLAPSED = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):/(?!/)")


def store_uri(value: object) -> str | None:
    """The store URI an `--index` value names, or None for a folder path.

    Accepts a `pathlib.Path` too: `Path("milvus://h:1/c")` collapses the `//` (`milvus:/h:1/c`), so a
    registered scheme followed by one slash is read back as the URI it was."""
    if not isinstance(value, (str, PurePath)):
        return None
    text = str(value)
    if uri_scheme(text) is not None:
        return text
    match = _COLLAPSED.match(text)
    if match and match.group(1).lower() in STORE_SCHEMES:
        return f"{match.group(1)}://{text[match.end():]}"
    return None


def is_store_uri(value: object) -> bool:
    """True when an `--index` value is a URI (served by a VectorStore), False for a folder path."""
    return store_uri(value) is not None


def redact_uri(uri: str) -> str:
    """The URI without its password, for messages and logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


def with_collection(base_uri: str, collection: str) -> str:
    """A base URI (`milvus://HOST:PORT`, `postgresql://USER@HOST:PORT/DB`) pointed at one collection.

    >>> with_collection("milvus://127.0.0.1:19530", "docs")
    'milvus://127.0.0.1:19530/docs'
    >>> with_collection("postgresql://me@127.0.0.1:54329/postgres", "docs")
    'postgresql://me@127.0.0.1:54329/postgres?collection=docs'
    """
    parts = urlsplit(base_uri)
    if uri_scheme(base_uri) in ("postgresql", "postgres"):
        query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("collection="))
        return urlunsplit(parts._replace(query=(query + "&" if query else "") + f"collection={collection}"))
    return urlunsplit(parts._replace(path=f"/{collection}"))


def open_store(uri: str) -> VectorStore:
    """Connect to the store a URI names; ConfigError for an unknown scheme, MissingExtraError when the
    backend's extra is not installed, BackendError when the engine cannot be reached."""
    scheme = uri_scheme(uri)
    if scheme is None:
        raise ConfigError(f"{uri!r} is a folder path, not a store URI (scheme://...)")
    if scheme not in STORE_SCHEMES:
        raise ConfigError(
            f"unknown index URI scheme {scheme!r} in {redact_uri(uri)}: use a folder path or one of "
            + ", ".join(f"{s}://" for s in STORE_SCHEMES.names())
        )
    return STORE_SCHEMES.get(scheme)(uri)


def _milvus(uri: str) -> VectorStore:
    from ragtune.store.milvus import open_milvus_store

    return open_milvus_store(uri)


def _postgres(uri: str) -> VectorStore:
    from ragtune.store.postgres import open_postgres_store

    return open_postgres_store(uri)


for _scheme, _factory in [("milvus", _milvus), ("milvus+http", _milvus), ("milvus+https", _milvus),
                          ("postgresql", _postgres), ("postgres", _postgres)]:
    register_store_scheme(_scheme, _factory)
del _scheme, _factory
