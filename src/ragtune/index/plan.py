"""Planning a commit: which documents to (re)write against one committed manifest, which are unchanged.

Cheap (hashes only), so a writer plans without the lock and plans again under it if another writer
committed meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ragtune.errors import InputError
from ragtune.index import manifest as mf
from ragtune.types import Document


def latest_documents(docs: Iterable[Document]) -> tuple[dict[str, Document], dict[str, str]]:
    """The documents to write, by id (an id given twice keeps its last version), and their content hashes;
    InputError for anything that is not a Document with an id. Shared by every index backend's add_documents."""
    from ragtune.ingest import document_hash

    latest: dict[str, Document] = {}
    for doc in docs:
        if not isinstance(doc, Document):
            raise InputError(f"add_documents expects Document records, got {type(doc).__name__}")
        if not doc.doc_id:
            raise InputError(f"document with empty doc_id (source {doc.source!r})")
        latest.pop(doc.doc_id, None)
        latest[doc.doc_id] = doc
    return latest, {doc_id: document_hash(doc) for doc_id, doc in latest.items()}


@dataclass
class Plan:
    """What a commit will do against one manifest: documents to (re)write and what is left alone."""

    todo: list[Document]
    replaced: int
    unchanged: int
    same_content: list[tuple[str, str]]


def make_plan(manifest: mf.Manifest, latest: dict[str, Document], hashes: dict[str, str], dedupe: bool) -> Plan:
    """Compare documents with the committed state: ids with the same hash are unchanged, ids with another
    hash are replaced; a new id is added unless (dedupe) its content is already live under another id."""
    todo: list[Document] = []
    replaced = unchanged = 0
    live = {doc_id: entry.hash for doc_id, entry in manifest.documents.items()}
    for doc_id, doc in latest.items():
        if doc_id in manifest.documents:
            if manifest.documents[doc_id].hash == hashes[doc_id]:
                unchanged += 1
            else:
                todo.append(doc)
                replaced += 1
                live[doc_id] = hashes[doc_id]
    by_hash: dict[str, str] = {}
    for doc_id, digest in live.items():
        by_hash.setdefault(digest, doc_id)
    same: list[tuple[str, str]] = []
    for doc_id, doc in latest.items():
        if doc_id in manifest.documents:
            continue
        twin = by_hash.get(hashes[doc_id]) if dedupe else None
        if twin is not None:
            same.append((doc_id, twin))
            continue
        todo.append(doc)
        by_hash.setdefault(hashes[doc_id], doc_id)
    return Plan(todo, replaced, unchanged, same)
