"""What readers of an index folder see: one committed state (chunks and vectors of the live rows, and the
search structures built over them on first use), loaded consistently even while a writer commits; and the
records `Index` hands out (DocumentInfo, IngestStats)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.config import IndexConfig
from ragtune.errors import NotBuiltError
from ragtune.index import manifest as mf
from ragtune.index.embed import chunk_embed_text, stored_config
from ragtune.types import Chunk


@dataclass(frozen=True)
class IngestStats:
    """What one add/delete commit changed."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    same_content: tuple[tuple[str, str], ...] = ()  # (new id, live id) pairs not added: content already indexed


@dataclass(frozen=True)
class DocumentInfo:
    """A live document of the index."""

    doc_id: str
    title: str
    source: str
    hash: str
    n_chunks: int
    metadata: dict[str, Any] = field(default_factory=dict)


class IndexState:
    """One committed generation, loaded: live chunks and vectors in a stable order, search structures lazily.

    Immutable once built, so readers can keep using an old state while `reload` swaps in a new one.
    """

    def __init__(self, index_dir: Path, manifest: mf.Manifest):
        self.manifest = manifest
        self.generation = manifest.generation
        order = docs_in_state_order(manifest)
        by_segment: dict[str, list[tuple[int, int]]] = {}
        for _doc_id, entry in order:
            by_segment.setdefault(entry.segment, []).append((entry.start, entry.n_chunks))
        chunks: list[Chunk] = []
        vector_parts: list[np.ndarray] = []
        window_parts: list[Any] = []
        with_windows = stored_config(manifest.config).embed.windows > 0
        for name in manifest.segments:
            ranges = by_segment.get(name)
            if not ranges:
                continue
            seg_chunks = mf.read_segment_chunks(index_dir, name)
            seg_vectors = mf.read_segment_vectors(index_dir, name, manifest.dim)
            rows = np.concatenate([np.arange(s, s + n) for s, n in ranges])
            if len(seg_chunks) != len(seg_vectors) or (len(rows) and rows.max() >= len(seg_chunks)):
                raise mf.corrupt(
                    index_dir, f"{mf.SEGMENTS}/{name}",
                    f"{len(seg_chunks)} chunks and {len(seg_vectors)} vectors do not match the manifest",
                )
            chunks.extend(seg_chunks[int(r)] for r in rows)
            vector_parts.append(np.asarray(seg_vectors[rows], dtype=np.float32))
            if with_windows:
                window_parts.append(mf.read_segment_windows(index_dir, name, len(seg_chunks), manifest.dim).select(rows))
        dim = manifest.dim or 1
        self.chunks = chunks
        self.vectors = np.concatenate(vector_parts) if vector_parts else np.zeros((0, dim), dtype=np.float32)
        # the sentence windows of the live rows (ragtune.index.windows), row-aligned; None for an index without
        self.windows: Any = None
        if with_windows:
            from ragtune.index.windows import concat

            self.windows = concat(window_parts, dim)
        self.row_of = {c.chunk_id: i for i, c in enumerate(chunks)}
        self._lock = threading.Lock()
        self._dense: Any = None
        self._bm25: Any = None
        self._meta: Any = None
        self._index_dir = index_dir

    def dense(self, config: IndexConfig) -> Any:
        """The DenseIndex over this state's vectors (built once)."""
        with self._lock:
            if self._dense is None:
                if self.windows is not None:  # a chunk scored by its best sentence window
                    from ragtune.index.windows import WindowDenseIndex

                    self._dense = WindowDenseIndex(self.windows, cache_dir=self._index_dir / "ann", key=self.cache_key())
                else:
                    from ragtune.index.dense import DenseIndex

                    self._dense = DenseIndex(self.vectors, cache_dir=self._index_dir / "ann", key=self.cache_key())
            return self._dense

    def bm25(self, config: IndexConfig) -> Any:
        """The BM25Index over this state's chunk texts (built once)."""
        with self._lock:
            if self._bm25 is None:
                from ragtune.index.bm25 import BM25Index

                texts = [chunk_embed_text(c.title, c.text) for c in self.chunks]
                self._bm25 = BM25Index(texts, config.bm25)
            return self._bm25

    def metadata_index(self) -> Any:
        with self._lock:
            if self._meta is None:
                from ragtune.index.metadata import MetadataIndex

                self._meta = MetadataIndex(self.chunks)
            return self._meta

    def cache_key(self) -> str:
        """Identifies the live row set (segments and ranges), for derived caches such as the ANN graph."""
        import hashlib

        parts = sorted(f"{e.segment}:{e.start}:{e.n_chunks}" for e in self.manifest.documents.values())
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def load_state(path: Path, manifest: mf.Manifest | None = None, attempts: int = 3) -> IndexState:
    """Load the committed state. A writer may commit (and collect the old segments) between our reading
    the manifest and the segments; then the manifest is read again."""
    for attempt in range(attempts):
        manifest = manifest or mf.read_manifest(path)
        try:
            return IndexState(path, manifest)
        except NotBuiltError:
            if attempt == attempts - 1:
                raise
            newer = mf.read_manifest(path)
            if newer.generation == manifest.generation:
                raise
            manifest = newer
    raise AssertionError("unreachable")


def docs_in_state_order(manifest: mf.Manifest) -> list[tuple[str, mf.DocEntry]]:
    seg_order = {name: i for i, name in enumerate(manifest.segments)}
    return sorted(manifest.documents.items(), key=lambda kv: (seg_order[kv[1].segment], kv[1].start))
