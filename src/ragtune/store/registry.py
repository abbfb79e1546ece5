"""Which storage an `--index` value names: a folder path (the default folder index) or a URI whose scheme picks
a VectorStore backend.

    my-index                                          -> the folder index (ragtune.index.Index), unchanged
    milvus://HOST:PORT/COLLECTION                     -> Milvus (ragtune[milvus]); milvus+https:// for TLS
    postgresql://USER[:PASS]@HOST:PORT/DB?collection=NAME -> PostgreSQL + pgvector (ragtune[postgres])

>>> is_store_uri("runs/index"), is_store_uri("milvus://127.0.0.1:19530/docs")
(False, True)
"""

from __future__ import annotations

from collections.abc import Callable

from ragtune.errors import ConfigError
from ragtune.registry import Registry
from ragtune.store.base import VectorStore
from ragtune.uris import index_uri, redact_uri, uri_scheme, with_collection  # noqa: F401  (re-exported)

StoreFactory = Callable[[str], VectorStore]  # (uri) -> an open store (connects; creates nothing)
STORE_SCHEMES: Registry[StoreFactory] = Registry("index URI scheme")


def register_store_scheme(scheme: str, factory: StoreFactory) -> None:
    """Make `scheme://...` index values open `factory(uri)`; ConfigError if the scheme is taken."""
    STORE_SCHEMES.register(scheme, factory)


def store_uri(value: object) -> str | None:
    """The store URI an `--index` value names, or None for a folder path (ragtune.uris.index_uri)."""
    return index_uri(value, STORE_SCHEMES.names())


def is_store_uri(value: object) -> bool:
    """True when an `--index` value is a URI (served by a VectorStore), False for a folder path."""
    return store_uri(value) is not None


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
