"""Re-chunk an index with another chunk size into a new folder, from the exact texts of its documents.

>>> documents = exact_documents(index)  # doctest: +SKIP
>>> rechunk_index(index, "search/chunks-128", ChunkConfig(chunk_tokens=128, overlap_tokens=20), documents, cache)

An index keeps chunks, not documents: chunks overlap and their whitespace is collapsed, so joining them does not
give the document back in general. A document's exact text is had in one of two ways, each checked against the
content hash the manifest records for it (with its recorded title and metadata), so a re-chunked index holds the
very documents the original does or is not built at all:
- a document stored as one chunk whose text hashes to the recorded hash is that text;
- otherwise its source file (the manifest's `source`, as it was given to `ragtune ingest`) is read again.
A document that neither gives back (added through the API, source moved or edited since) makes the re-chunking
impossible: CannotRechunk says which and why.

Vectors come from an EmbeddingCache keyed by (embedder id, embedded text): chunks whose text another chunking
already produced (short documents are one chunk at every size) are not embedded again.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.config import ChunkConfig
from ragtune.errors import InputError
from ragtune.index import manifest as mf
from ragtune.index.embed import chunk_embed_text, vectors_id, vectors_id_of
from ragtune.types import Document

logger = logging.getLogger(__name__)


class CannotRechunk(InputError):
    """The index cannot be re-chunked exactly: the message says which documents and why."""


class EmbeddingCache:
    """Vectors by (vectors id, embedded text), seeded from indexes already built; counts what it embedded. The
    vectors id (ragtune.index.embed.vectors_id) is the embedder's model id, with precision and quantised graph for
    int8, so int8 and fp32 vectors of one model never stand in for each other."""

    def __init__(self) -> None:
        self._vectors: dict[tuple[str, str], np.ndarray] = {}
        self.embedded = 0  # texts the model embedded (cache misses)
        self.hits = 0  # texts served from the cache

    def __len__(self) -> int:
        return len(self._vectors)

    def add_index(self, index: Any) -> None:
        """Remember every live chunk's vector of `index` under its vectors id (a folder index; a store index keeps
        its vectors in the engine, so its chunks are embedded again)."""
        key = stored_vectors_id(index)
        if not key or getattr(index, "is_store", False):
            return
        state = index.state
        self.add(key, [chunk_embed_text(c.title, c.text) for c in state.chunks], state.vectors)
        if state.windows is not None:  # sentence windows' vectors, keyed by their texts as well
            from ragtune.index.windows import window_texts

            self.add(key, window_texts(state.chunks, index.config.embed.windows)[0], state.windows.vectors)

    def add(self, embedder_id: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        for text, vector in zip(texts, vectors, strict=True):
            self._vectors.setdefault((embedder_id, text), vector)

    def encode(self, embedder: Any, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(len(texts), dim) vectors: cached ones as they are, the others embedded by `embedder` in one call."""
        key = vectors_id_of(embedder)
        missing = list(dict.fromkeys(t for t in texts if (key, t) not in self._vectors))
        if missing:
            self.add(key, missing, embedder.encode(missing, batch_size=batch_size))
            self.embedded += len(missing)
        self.hits += len(texts) - len(missing)
        if not texts:
            return np.zeros((0, embedder.dim), dtype=np.float32)
        return np.stack([self._vectors[(key, t)] for t in texts]).astype(np.float32, copy=False)


def stored_vectors_id(index: Any) -> str:
    """The vectors id (ragtune.index.embed.vectors_id) of what `index` holds: a folder's manifest's, a store's
    config's; "" while it holds none."""
    if getattr(index, "is_store", False):
        stored = index.store.read_config()
        return stored.embedder_id if stored is not None else ""
    manifest = index.state.manifest
    return vectors_id(manifest.embedder_id, manifest.precision, manifest.int8_graph) if manifest.embedder_id else ""


class CachedEmbedder:
    """An embedder whose encode goes through an EmbeddingCache (same model id, dimension and precision)."""

    def __init__(self, embedder: Any, cache: EmbeddingCache):
        self.inner, self.cache = embedder, cache
        self.model_id, self.dim = embedder.model_id, embedder.dim
        self.precision = getattr(embedder, "precision", "fp32")
        self.int8_graph = getattr(embedder, "int8_graph", 0)

    def encode(self, texts: list[str], batch_size: int = 64, **_: Any) -> np.ndarray:
        return self.cache.encode(self.inner, list(texts), batch_size)


def exact_documents(index: Any) -> list[Document]:
    """The live documents of `index` with their exact texts, in the index's order (see the module docstring).

    CannotRechunk when the index is not a folder index or some document's text cannot be had exactly.
    """
    if not hasattr(index, "state") or not hasattr(index, "path"):
        raise CannotRechunk(f"re-chunking reads an index folder; {index!r} is not one")
    from ragtune.ingest import document_hash

    infos = index.documents()
    chunks_of: dict[str, list[Any]] = {}
    for chunk in index.chunks():
        chunks_of.setdefault(chunk.doc_id, []).append(chunk)
    found: dict[str, Document] = {}
    for info in infos:
        chunks = chunks_of.get(info.doc_id, [])
        if len(chunks) == 1:
            doc = Document(info.doc_id, chunks[0].text, info.title, info.source, dict(info.metadata))
            if document_hash(doc) == info.hash:
                found[info.doc_id] = doc
    problems: list[str] = []
    by_source: dict[str, list[Any]] = {}
    for info in infos:
        if info.doc_id not in found:
            by_source.setdefault(info.source, []).append(info)
    for source, wanted in by_source.items():
        problems.extend(_from_source(source, wanted, found, document_hash))
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise CannotRechunk(f"{len(problems)} of the {len(infos)} document(s) of index {index.path} cannot be "
                            f"read back exactly (the index keeps chunks, not documents): {shown}")
    return [found[info.doc_id] for info in infos]


def _from_source(source: str, wanted: list[Any], found: dict[str, Document], document_hash: Any) -> list[str]:
    """Read the `wanted` documents (DocumentInfo) from their source file into `found`; the problems, one each."""
    path = Path(source)
    if not source or not path.is_file():
        where = f"source {source!r} is not a file here" if source else "no source file recorded"
        return [f"{info.doc_id!r}: {where}" for info in wanted]
    from ragtune.ingest import load_file

    left = {info.doc_id: info for info in wanted}
    # The id a file was loaded under is the document's own (one document a file), or the prefix of
    # "<base>:<line>" (JSONL lines without ids); ids a file sets itself (JSONL, SQuAD) need no base. So a file is
    # read once or twice, not once per document.
    bases = dict.fromkeys([wanted[0].doc_id, *(i.doc_id.rsplit(":", 1)[0] for i in wanted if ":" in i.doc_id)])
    for base in bases:
        if not left:
            break
        for item in load_file(path, base, source=source):
            info = left.get(getattr(item, "doc_id", None))
            if info is None:
                continue
            doc = replace(item, title=info.title, source=info.source, metadata=dict(info.metadata))
            if document_hash(doc) == info.hash:
                found[info.doc_id] = doc
                del left[info.doc_id]
    return [f"{doc_id!r}: {source!r} no longer holds the text that was indexed" for doc_id in left]


def rechunk_index(source: Any, target: str | os.PathLike, chunk: ChunkConfig, documents: Iterable[Document],
                  cache: EmbeddingCache) -> Any:
    """Write `target`: `documents` (exact_documents(source)) chunked with `chunk`, embedded by `source`'s embedder
    through `cache`; everything else of `source`'s config kept. Built in a temp folder renamed into place."""
    from ragtune.index.store import Index

    target = Path(target)
    config = source.config.model_copy(update={"chunk": chunk})
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.rechunking"
    try:
        Index.create(tmp, config, CachedEmbedder(source.embedder, cache)).add_documents(list(documents))
        os.rename(tmp, target)
        mf.fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Index.open(target, embedder=source.embedder)
