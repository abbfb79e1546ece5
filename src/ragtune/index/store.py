"""The Index: a crash-safe folder of documents, chunks and vectors, with dense and BM25 search built on top.

>>> index = Index.open_or_create("my-index")
>>> index.add_documents(load_documents(["docs/"]).documents)
IngestStats(added=2, replaced=0, unchanged=0, deleted=0, chunks_added=7, chunks_removed=0)
>>> open_retriever(index, "hybrid").retrieve(["how many days of leave?"], k=3)  # ragtune.retrieve
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.config import BUNDLED, IndexConfig
from ragtune.errors import ConfigError, InputError, NotBuiltError
from ragtune.index import manifest as mf
from ragtune.index.embed import TextEmbedder, chunk_embed_text, encode_in_steps, get_embedder
from ragtune.index.hooks import run_commit_hooks
from ragtune.index.lock import writer_lock
from ragtune.progress import progress_task
from ragtune.types import Chunk, Document

logger = logging.getLogger(__name__)

EMBED_STEP = 512  # texts per encode call: large enough to keep sentence-transformers' batching efficient
COMPACT_MIN_DEAD = 64  # compact only when tombstones outnumber live rows and there are at least this many


@dataclass(frozen=True)
class IngestStats:
    """What one add/delete commit changed."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0


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
        order = _docs_in_state_order(manifest)
        by_segment: dict[str, list[tuple[int, int]]] = {}
        for _doc_id, entry in order:
            by_segment.setdefault(entry.segment, []).append((entry.start, entry.n_chunks))
        chunks: list[Chunk] = []
        vector_parts: list[np.ndarray] = []
        for name in manifest.segments:
            ranges = by_segment.get(name)
            if not ranges:
                continue
            seg_chunks = mf.read_segment_chunks(index_dir, name)
            seg_vectors = mf.read_segment_vectors(index_dir, name)
            rows = np.concatenate([np.arange(s, s + n) for s, n in ranges])
            if len(seg_chunks) != len(seg_vectors) or (len(rows) and rows.max() >= len(seg_chunks)):
                raise NotBuiltError(f"index {index_dir} is corrupt: segment {name} does not match the manifest")
            chunks.extend(seg_chunks[int(r)] for r in rows)
            vector_parts.append(np.asarray(seg_vectors[rows], dtype=np.float32))
        dim = manifest.dim or 1
        self.chunks = chunks
        self.vectors = np.concatenate(vector_parts) if vector_parts else np.zeros((0, dim), dtype=np.float32)
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


class Index:
    """A crash-safe index folder. Writers take a lock; every change is one atomic commit."""

    def __init__(self, path: Path, config: IndexConfig, embedder: TextEmbedder | None = None):
        self.path = Path(path)
        self.config = config
        self._embedder = embedder
        self._state: IndexState | None = None
        self._state_lock = threading.Lock()

    # ---- opening -------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, config: IndexConfig = IndexConfig(), embedder: TextEmbedder | None = None) -> Index:
        """Create an empty index folder (atomically). An existing index with the same config is opened;
        with another config, ConfigError."""
        path = Path(path)
        if (path / mf.MANIFEST).is_file():
            existing = cls.open(path, embedder=embedder)
            if existing.config != config:
                raise ConfigError(
                    f"index {path} exists with another config: {existing.config.model_dump()} != {config.model_dump()}"
                )
            return existing
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ConfigError(f"{path} exists and is not an index (no {mf.MANIFEST}); choose an empty or new folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.creating"
        tmp.mkdir()
        try:
            from ragtune import __version__

            (tmp / mf.SEGMENTS).mkdir()
            (tmp / mf.CONFIG).write_text(json.dumps(config.model_dump(), indent=2) + "\n", encoding="utf-8")
            manifest = mf.Manifest(config=config.model_dump(), ragtune_version=__version__)
            mf.write_manifest(tmp, manifest)
            if path.exists():
                path.rmdir()  # an empty folder the user made for us
            os.rename(tmp, path)
            mf.fsync_dir(path.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(path, config, embedder)

    @classmethod
    def open(cls, path: str | os.PathLike, embedder: TextEmbedder | None = None) -> Index:
        """Open an existing index; NotBuiltError if it is missing or incomplete."""
        path = Path(path)
        if not path.is_dir():
            raise NotBuiltError(f"no index at {path}; build it with `ragtune ingest PATH --index {path}`")
        manifest = mf.read_manifest(path)
        try:
            config = IndexConfig.model_validate(manifest.config)
        except ValueError as exc:
            raise NotBuiltError(f"index {path} has an unreadable config: {exc}") from exc
        index = cls(path, config, embedder)
        index._state = _load_state(path, manifest)
        return index

    @classmethod
    def open_or_create(cls, path: str | os.PathLike, config: IndexConfig | None = None, embedder: TextEmbedder | None = None) -> Index:
        """Open the index at path, or create it (with config, default IndexConfig()) if there is none.

        With a config given and an existing index built with another one: ConfigError."""
        path = Path(path)
        if (path / mf.MANIFEST).is_file():
            index = cls.open(path, embedder=embedder)
            if config is not None and index.config != config:
                raise ConfigError(
                    f"index {path} exists with another config: {index.config.model_dump()} != {config.model_dump()}"
                )
            return index
        return cls.create(path, config or IndexConfig(), embedder=embedder)

    # ---- reading -------------------------------------------------------------------------------------------
    @property
    def state(self) -> IndexState:
        with self._state_lock:
            if self._state is None:
                self._state = _load_state(self.path)
            return self._state

    @property
    def embedder(self) -> TextEmbedder:
        """The embedder of this index (injected, or loaded by name from the config, once per process)."""
        if self._embedder is None:
            self._embedder = get_embedder(self.config.embed.model)
        return self._embedder

    @property
    def generation(self) -> int:
        return self.state.generation

    def reload(self) -> None:
        """Pick up commits made by another process or Index instance (cheap when nothing changed)."""
        manifest = mf.read_manifest(self.path)
        with self._state_lock:
            if self._state is not None and self._state.generation == manifest.generation:
                return
        new_state = _load_state(self.path, manifest)
        with self._state_lock:
            self._state = new_state

    def __len__(self) -> int:
        return len(self.state.chunks)

    def documents(self) -> list[DocumentInfo]:
        """Live documents, in commit order."""
        state = self.state
        return [
            DocumentInfo(doc_id, e.title, e.source, e.hash, e.n_chunks, dict(e.metadata))
            for doc_id, e in state.manifest.documents.items()
        ]

    def chunks(self) -> list[Chunk]:
        """All live chunks in a stable order (by segment, then position)."""
        return list(self.state.chunks)

    def get_chunks(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        """Chunks by id, in the order asked; InputError naming the first unknown id."""
        state = self.state
        out = []
        for chunk_id in chunk_ids:
            row = state.row_of.get(chunk_id)
            if row is None:
                raise InputError(f"unknown chunk id {chunk_id!r} in index {self.path}")
            out.append(state.chunks[row])
        return out

    # ---- writing -------------------------------------------------------------------------------------------
    def add_documents(self, docs: Iterable[Document]) -> IngestStats:
        """Add or replace documents in one atomic commit. Unchanged documents (same id and content hash)
        are skipped without re-embedding; a document id given twice keeps its last version."""
        from ragtune.ingest import chunk_documents, document_hash, load_tokenizer

        latest: dict[str, Document] = {}
        for doc in docs:
            if not isinstance(doc, Document):
                raise InputError(f"add_documents expects Document records, got {type(doc).__name__}")
            if not doc.doc_id:
                raise InputError(f"document with empty doc_id (source {doc.source!r})")
            latest.pop(doc.doc_id, None)
            latest[doc.doc_id] = doc
        hashes = {doc_id: document_hash(doc) for doc_id, doc in latest.items()}

        with writer_lock(self.path):
            manifest = mf.read_manifest(self.path)
            todo = [d for d_id, d in latest.items() if manifest.documents.get(d_id, None) is None
                    or manifest.documents[d_id].hash != hashes[d_id]]
            unchanged = len(latest) - len(todo)
            if not todo:
                self.reload()
                return IngestStats(unchanged=unchanged)
            replaced = sum(1 for d in todo if d.doc_id in manifest.documents)
            self._check_embedder(manifest)  # before the expensive part
            model_name = self.config.embed.model
            tokenizer = load_tokenizer(BUNDLED if model_name.startswith("hash") else model_name)
            chunks = chunk_documents(todo, self.config.chunk, tokenizer)
            vectors = self._embed([chunk_embed_text(c.title, c.text) for c in chunks])

            generation = manifest.generation + 1
            name = mf.new_segment_name(generation)
            mf.write_segment(self.path, name, chunks, vectors)
            removed = sum(manifest.documents[d.doc_id].n_chunks for d in todo if d.doc_id in manifest.documents)
            starts: dict[str, int] = {}
            for row, chunk in enumerate(chunks):
                starts.setdefault(chunk.doc_id, row)
            counts: dict[str, int] = {}
            for chunk in chunks:
                counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
            manifest.segments[name] = len(chunks)
            for doc in todo:
                manifest.documents.pop(doc.doc_id, None)  # re-insert: a replaced document moves to the end
                manifest.documents[doc.doc_id] = mf.DocEntry(
                    hash=hashes[doc.doc_id], segment=name, start=starts.get(doc.doc_id, 0),
                    n_chunks=counts.get(doc.doc_id, 0), title=doc.title, source=doc.source,
                    metadata=dict(doc.metadata),
                )
            self._commit(manifest, generation)
        stats = IngestStats(
            added=len(todo) - replaced, replaced=replaced, unchanged=unchanged,
            chunks_added=len(chunks), chunks_removed=removed,
        )
        logger.info("index %s: %s", self.path, stats)
        return stats

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Remove documents in one atomic commit; InputError (and no change) if any id is unknown.
        Returns the number of chunks removed."""
        with writer_lock(self.path):
            manifest = mf.read_manifest(self.path)
            unknown = [d for d in doc_ids if d not in manifest.documents]
            if unknown:
                raise InputError(f"unknown document id(s) in index {self.path}: {', '.join(map(repr, unknown))}")
            removed = 0
            for doc_id in dict.fromkeys(doc_ids):
                removed += manifest.documents.pop(doc_id).n_chunks
            self._commit(manifest, manifest.generation + 1)
        return removed

    def _embed(self, texts: list[str]) -> np.ndarray:
        embedder = self.embedder
        parts = []
        with progress_task("Embedding", total=len(texts)) as task:
            for start in range(0, len(texts), EMBED_STEP):
                batch = texts[start : start + EMBED_STEP]
                parts.append(encode_in_steps(embedder, batch, self.config.embed.batch_size, task.advance))
        if not parts:
            return np.zeros((0, embedder.dim), dtype=np.float32)
        return np.concatenate(parts).astype(np.float32, copy=False)

    def _check_embedder(self, manifest: mf.Manifest) -> None:
        embedder = self.embedder
        if manifest.embedder_id and manifest.live_rows() and manifest.embedder_id != embedder.model_id:
            raise ConfigError(
                f"index {self.path} was embedded with {manifest.embedder_id!r}, not {embedder.model_id!r}"
            )
        manifest.embedder_id = embedder.model_id
        manifest.dim = embedder.dim

    def _commit(self, manifest: mf.Manifest, generation: int) -> None:
        """Compact if tombstones dominate, write the manifest atomically, then collect garbage. Caller holds the lock."""
        from ragtune import __version__

        dead, live = manifest.dead_rows(), manifest.live_rows()
        if dead >= COMPACT_MIN_DEAD and dead > live:
            self._compact(manifest, generation)
        manifest.generation = generation
        manifest.ragtune_version = __version__
        mf.write_manifest(self.path, manifest)
        mf.collect_garbage(self.path, manifest)
        self.reload()
        run_commit_hooks(self)  # derived structures (an entity graph) follow the commit; see index/hooks.py

    def _compact(self, manifest: mf.Manifest, generation: int) -> None:
        """Rewrite the live rows into one new segment (no re-embedding); old segments become garbage."""
        state = IndexState(self.path, manifest)
        name = mf.new_segment_name(generation)
        mf.write_segment(self.path, name, state.chunks, state.vectors)
        start = 0
        for _doc_id, entry in _docs_in_state_order(manifest):
            entry.segment, entry.start = name, start
            start += entry.n_chunks
        manifest.segments = {name: len(state.chunks)}
        logger.info("index %s: compacted into %s (%d live rows)", self.path, name, len(state.chunks))


def _load_state(path: Path, manifest: mf.Manifest | None = None, attempts: int = 3) -> IndexState:
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


def _docs_in_state_order(manifest: mf.Manifest) -> list[tuple[str, mf.DocEntry]]:
    seg_order = {name: i for i, name in enumerate(manifest.segments)}
    return sorted(manifest.documents.items(), key=lambda kv: (seg_order[kv[1].segment], kv[1].start))
