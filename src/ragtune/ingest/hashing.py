"""Stable content hashes, so an index can tell which documents changed since the last ingest."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

from ragtune.types import Document

_TRAILING_SPACE = re.compile(r"[ \t\f\v]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")


def normalize_content(text: str) -> str:
    """Unicode NFC, LF line endings, no trailing spaces, at most one blank line in a row, stripped ends.

    Two files that differ only in such invisible details hash (and chunk) the same.
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _TRAILING_SPACE.sub("\n", text + "\n")
    return _BLANK_RUNS.sub("\n\n", text).strip()


def document_hash(doc: Document) -> str:
    """sha256 hex of a document's normalised title, text and metadata (not its id or source).

    Stable across processes and dict orderings; changes whenever the visible content changes.
    """
    payload: dict[str, Any] = {
        "title": normalize_content(doc.title),
        "text": normalize_content(doc.text),
        "metadata": doc.metadata,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
