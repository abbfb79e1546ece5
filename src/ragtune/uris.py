"""`--index` values: a folder path, or a URI whose scheme names a database backend (ragtune.store).

Parsing lives here, below both `ragtune.index` (which dispatches a URI to the backend registered for its scheme)
and `ragtune.store` (the backends), so neither imports the other to read a URI.

>>> uri_scheme("runs/index"), uri_scheme("milvus://127.0.0.1:19530/docs")
(None, 'milvus')
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import PurePath
from urllib.parse import urlsplit, urlunsplit

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*)://")
_COLLAPSED = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):/(?!/)")
_URI_LIKE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]+):(?:/|$)")


def uri_scheme(value: str) -> str | None:
    """The scheme of `value` if it looks like a URI (`scheme://...`), else None (a folder path)."""
    match = _SCHEME.match(str(value))
    return match.group(1).lower() if match else None


def index_uri(value: object, schemes: Collection[str]) -> str | None:
    """The URI an `--index` value names, or None for a folder path.

    Accepts a `pathlib.Path` too: `Path("milvus://h:1/c")` collapses the `//` (`milvus:/h:1/c`), so one of
    `schemes` followed by one slash is read back as the URI it was.

    >>> index_uri("milvus:/h:1/c", {"milvus"}), index_uri("runs/index", {"milvus"})
    ('milvus://h:1/c', None)
    """
    if not isinstance(value, (str, PurePath)):
        return None
    text = str(value)
    if uri_scheme(text) is not None:
        return text
    match = _COLLAPSED.match(text)
    if match and match.group(1).lower() in schemes:
        return f"{match.group(1)}://{text[match.end():]}"
    return None


def uri_like_scheme(value: object) -> str | None:
    """The scheme of an `--index` value that reads as a URI but is not a complete one: `scheme://...`, the
    `scheme:/...` a `pathlib.Path` makes of it, or a bare `scheme:` (what `Path("postgresql://")` becomes). None
    for a plain path (a one-letter scheme is a Windows drive, not a URI).

    >>> uri_like_scheme("qdrant://h:1/c"), uri_like_scheme("postgresql:"), uri_like_scheme("runs/index")
    ('qdrant', 'postgresql', None)
    >>> uri_like_scheme("C:/index")
    """
    match = _URI_LIKE.match(str(value)) if isinstance(value, (str, PurePath)) else None
    return match.group(1).lower() if match else None


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
