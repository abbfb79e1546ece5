"""Planning a commit: which documents to (re)write against one committed manifest, which are unchanged.

Cheap (hashes only), so a writer plans without the lock and plans again under it if another writer
committed meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from ragtune.index import manifest as mf
from ragtune.types import Document


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
