"""The Index: a crash-safe folder of documents, chunks and vectors, with dense and BM25 search built on top.

>>> index = Index.open_or_create("my-index")
>>> index.add_documents(load_documents(["docs/"]).documents)
IngestStats(added=2, replaced=0, unchanged=0, deleted=0, chunks_added=7, chunks_removed=0, same_content=())
>>> open_retriever(index, "hybrid").retrieve(["how many days of leave?"], k=3)  # ragtune.retrieve
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.config import BUNDLED, IndexConfig, built_with_another
from ragtune.errors import ConfigError, InputError, NotBuiltError
from ragtune.index import manifest as mf
from ragtune.index.embed import (
    TextEmbedder,
    chunk_embed_text,
    embedder_for,
    encode_in_steps,
    int8_graph_of,
    stored_config,
    with_precision,
)
from ragtune.index.hooks import run_commit_hooks
from ragtune.index.lock import writer_lock
from ragtune.index.plan import Plan, latest_documents, make_plan
from ragtune.index.state import DocumentInfo, IndexState, IngestStats, docs_in_state_order, load_state  # noqa: F401  (re-exported)
from ragtune.progress import progress_task
from ragtune.registry import INDEX_BACKEND_PROVIDERS, Registry
from ragtune.types import Chunk, Document
from ragtune.uris import index_uri, redact_uri, uri_like_scheme, uri_scheme

logger = logging.getLogger(__name__)

# doc id -> its chunks, their (n, dim) vectors and sentence windows (ragtune.index.windows.Windows, or None)
Prepared = tuple[list[Chunk], np.ndarray, Any]
EMBED_STEP = 512  # texts per encode call: large enough to keep sentence-transformers' batching efficient
COMPACT_MIN_DEAD = 64  # compact only when tombstones outnumber live rows and there are at least this many
MAX_PLANS = 3  # plan-and-embed rounds without the lock before a writer embeds the rest under it


class Index:
    """A crash-safe index folder. Writers take a lock; every change is one atomic commit."""

    def __init__(self, path: Path, config: IndexConfig, embedder: TextEmbedder | None = None):
        self.path = Path(path)
        self.config = with_precision(config)
        self._embedder = embedder
        self._state: IndexState | None = None
        self._state_lock = threading.Lock()
        self._manifest_stamp: tuple[int, ...] | None = None  # the manifest file reload() last read

    # ---- opening -------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, config: IndexConfig = IndexConfig(), embedder: TextEmbedder | None = None) -> Index:
        """Create an empty index folder (atomically). An existing index with the same config is opened;
        with another config, ConfigError. A URI (milvus://, postgresql://) opens a store-backed index."""
        if (uri := _store_uri(path)) is not None:
            return _open_backend(uri, "open_or_create", config, embedder)
        path = folder_path(path)
        if (path / mf.MANIFEST).is_file():
            existing = cls.open(path, embedder=embedder)
            config = with_precision(config, like=existing.config)
            if existing.config != config:
                raise ConfigError(built_with_another(str(path), existing.config, config))
            return existing
        config = with_precision(config)
        mf.check_creatable(path)
        mf.create_folder(path, config)
        return cls(path, config, embedder)

    @classmethod
    def open(cls, path: str | os.PathLike, embedder: TextEmbedder | None = None) -> Index:
        """Open an existing index; NotBuiltError if it is missing or incomplete. A URI (milvus://,
        postgresql://) opens a store-backed index (ragtune.store.index.StoreIndex)."""
        if (uri := _store_uri(path)) is not None:
            return _open_backend(uri, "open", None, embedder)
        path = folder_path(path)
        if not path.is_dir():
            raise NotBuiltError(f"no index at {path}; build it with `ragtune ingest PATH --index {path}`")
        manifest = mf.read_manifest(path)
        try:
            config = stored_config(manifest.config)
        except ValueError as exc:
            raise mf.corrupt(path, f"{mf.MANIFEST} config", str(exc)) from None
        precision = getattr(embedder, "precision", config.embed.precision)
        if manifest.live_rows() and manifest.precision != precision:  # queries must match the stored vectors
            raise ConfigError(f"index {path} holds {manifest.precision} vectors; the embedder given is {precision}")
        graph = getattr(embedder, "int8_graph", None) if embedder is not None else int8_graph_of(precision)
        if manifest.live_rows() and precision == "int8" and graph is not None and manifest.int8_graph != graph:
            # searchable (cosine ~0.99 to this ragtune's int8 vectors), but adding to it is refused (_check_embedder)
            logger.warning("index %s holds int8 vectors of %s; queries are embedded by this ragtune's int8 graph "
                           "(format %s): re-embed it with `ragtune reindex %s --precision int8 --out NEW`",
                           path, _int8_graph_name(manifest.int8_graph), graph, path)
        index = cls(path, config, embedder)
        index._state = load_state(path, manifest)
        return index

    @classmethod
    def open_or_create(cls, path: str | os.PathLike, config: IndexConfig | None = None, embedder: TextEmbedder | None = None) -> Index:
        """Open the index at path, or prepare a new one (with config, default IndexConfig()) if there is none.

        A new index is empty and its folder is created by its first commit, so a command that fails
        before committing leaves nothing behind. With a config given and an existing index built with
        another one: ConfigError. A URI (milvus://, postgresql://) opens a store-backed index."""
        if (uri := _store_uri(path)) is not None:
            return _open_backend(uri, "open_or_create", config, embedder)
        path = folder_path(path)
        if (path / mf.MANIFEST).is_file():
            index = cls.open(path, embedder=embedder)
            if config is not None and index.config != with_precision(config, like=index.config):
                raise ConfigError(built_with_another(str(path), index.config, with_precision(config, like=index.config)))
            return index
        mf.check_creatable(path)
        index = cls(path, config or IndexConfig(), embedder)  # nothing on disk until the first commit
        index._state = IndexState(path, mf.Manifest(config=index.config.model_dump()))
        return index

    # ---- reading -------------------------------------------------------------------------------------------
    @property
    def state(self) -> IndexState:
        with self._state_lock:
            if self._state is None:
                self._state = load_state(self.path)
            return self._state

    @property
    def embedder(self) -> TextEmbedder:
        """The embedder of this index (injected, or loaded by name from the config, once per process)."""
        if self._embedder is None:
            self._embedder = embedder_for(self.config.embed)
        return self._embedder

    @property
    def generation(self) -> int:
        return self.state.generation

    def reload(self) -> None:
        """Pick up commits made by another process or Index instance (one stat when nothing changed: a commit
        renames a new manifest into place, so its inode, size or time changes)."""
        if self._state is not None and not (self.path / mf.MANIFEST).is_file() and self._state.generation == 0:
            return  # a new index whose folder no commit has created yet
        try:
            seen = (self.path / mf.MANIFEST).stat()
            stamp: tuple[int, ...] | None = (seen.st_ino, seen.st_size, seen.st_mtime_ns)
        except OSError:
            stamp = None
        if stamp is not None and stamp == self._manifest_stamp and self._state is not None:
            return
        manifest = mf.read_manifest(self.path)
        self._manifest_stamp = stamp
        with self._state_lock:
            if self._state is not None and self._state.generation == manifest.generation:
                return
        new_state = load_state(self.path, manifest)
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
    def add_documents(
        self, docs: Iterable[Document], dedupe_content: bool = False, lock_timeout_s: float | None = None,
        *, precomputed: Mapping[str, tuple[Any, ...]] | None = None,
    ) -> IngestStats:
        """Add or replace documents in one atomic commit. Unchanged documents (same id and content hash)
        are skipped without re-embedding; a document id given twice keeps its last version.

        With `dedupe_content` (what `ragtune ingest` does: its ids are file paths, and one file reached from
        two roots must stay one document), a document with a new id whose content (title, text, metadata)
        equals a live document's is not added: it is counted as unchanged and listed in `stats.same_content`
        as (its id, the live id). Off by default because callers that choose ids (the server's PUT, a BEIR
        corpus whose qrels name ids) need every id to exist. A changed document with an id already in the
        index always replaces its chunks.

        Chunking and embedding run without the writer lock; the lock is held only to commit. If another
        writer committed meanwhile, the plan is re-made against its state and only what is new is embedded.
        IndexBusyError if the lock is not free within `lock_timeout_s` (default: see `index.lock`).

        `precomputed` maps a doc id to its chunks and their (n, dim) vectors (and, optionally, their sentence
        windows, ragtune.index.windows.Windows; embedded here when missing and the config keeps windows), made
        elsewhere (Ray workers, ragtune.distributed.ray_ingest) with this index's chunking config and embedder, for
        this version of the document; those documents are not chunked or embedded again. Everything else (planning,
        dedupe, the lock, the commit, the manifest) is the same; documents it does not cover are chunked and embedded
        here.
        """
        latest, hashes = latest_documents(docs)
        prepared: dict[str, Prepared] = {}  # doc id -> its chunks, vectors and sentence windows
        for doc_id, (chunks, vectors, *windows) in (precomputed or {}).items():
            if doc_id in latest:
                vectors = np.asarray(vectors, dtype=np.float32)
                doc_windows = windows[0] if windows and self.config.embed.windows else None  # None: embedded here
                _check_precomputed(doc_id, chunks, vectors, self.embedder.dim, doc_windows)
                prepared[doc_id] = (list(chunks), vectors, doc_windows)

        for attempt in range(MAX_PLANS):
            manifest = self._read_manifest_or_empty()
            plan = make_plan(manifest, latest, hashes, dedupe_content)
            if not plan.todo:
                self.reload()
                return _stats(plan, 0, 0)
            self._prepare([d for d in plan.todo if d.doc_id not in prepared], manifest, prepared)
            self._fill_windows([d.doc_id for d in plan.todo], prepared)
            self._ensure_folder()
            with writer_lock(self.path, timeout_s=lock_timeout_s):
                current = mf.read_manifest(self.path)
                if current.generation != manifest.generation:  # another writer committed: re-plan (cheap)
                    plan = make_plan(current, latest, hashes, dedupe_content)
                    new = [d for d in plan.todo if d.doc_id not in prepared]
                    if new and attempt < MAX_PLANS - 1:
                        continue  # embed those without the lock, then try again
                    self._prepare(new, current, prepared)
                    self._fill_windows([d.doc_id for d in plan.todo], prepared)
                    manifest = current
                if not plan.todo:
                    self.reload()
                    return _stats(plan, 0, 0)
                chunks_added, removed = self._commit_plan(manifest, plan, hashes, prepared)
            break
        stats = _stats(plan, chunks_added, removed)
        logger.info("index %s: %s", self.path, stats)
        return stats

    def _prepare(self, docs: list[Document], manifest: mf.Manifest, prepared: dict[str, Prepared]) -> None:
        """Chunk and embed docs (no lock held) into prepared[doc_id]; their sentence windows follow in _fill_windows."""
        if not docs:
            return
        from ragtune.ingest import chunk_documents, load_tokenizer

        self._check_embedder(manifest)  # fails early, before the expensive part
        model_name = self.config.embed.model
        tokenizer = load_tokenizer(BUNDLED if model_name.startswith("hash") else model_name)
        chunks = chunk_documents(docs, self.config.chunk, tokenizer)
        vectors = self._embed([chunk_embed_text(c.title, c.text) for c in chunks])
        spans: dict[str, list[int]] = {}  # a document's chunks are consecutive: [first row, end row)
        for row, chunk in enumerate(chunks):
            spans.setdefault(chunk.doc_id, [row, row])[1] = row + 1
        for doc in docs:
            start, end = spans.get(doc.doc_id, (0, 0))
            prepared[doc.doc_id] = (chunks[start:end], vectors[start:end], None)  # a view, not a copy

    def embed_windows(self, chunks: Sequence[Chunk], vectors: np.ndarray | None = None) -> Any:
        """The sentence windows of `chunks` (ragtune.index.windows.Windows) embedded by this index's embedder (a
        window that is a whole chunk takes its row of `vectors`, the chunks' own), or None when its config keeps
        none."""
        size = self.config.embed.windows
        if not size:
            return None
        from ragtune.index.windows import embed_windows

        return embed_windows(chunks, size, lambda texts: self._embed(texts, "Embedding sentence windows"), vectors)

    def _fill_windows(self, doc_ids: Sequence[str], prepared: dict[str, Prepared]) -> None:
        """Embed, in one pass, the sentence windows of the prepared documents that have none yet (chunked here, or
        precomputed without them)."""
        if not self.config.embed.windows:
            return
        todo = [d for d in doc_ids if d in prepared and prepared[d][2] is None]
        if not todo:
            return
        chunks = [c for d in todo for c in prepared[d][0]]
        windows = self.embed_windows(chunks, np.concatenate([prepared[d][1] for d in todo]))
        start = 0
        for doc_id in todo:
            doc_chunks, vectors, _ = prepared[doc_id]
            prepared[doc_id] = (doc_chunks, vectors, windows.select(np.arange(start, start + len(doc_chunks))))
            start += len(doc_chunks)

    def _commit_plan(
        self, manifest: mf.Manifest, plan: Plan, hashes: dict[str, str], prepared: dict[str, Prepared]
    ) -> tuple[int, int]:
        """Write the planned documents' segment and commit (caller holds the lock). Returns (chunks added, removed)."""
        self._check_embedder(manifest)
        generation = manifest.generation + 1
        name = mf.new_segment_name(generation)
        chunks: list[Chunk] = []
        parts: list[np.ndarray] = []
        window_parts: list[Any] = []
        starts: dict[str, int] = {}
        for doc in plan.todo:
            doc_chunks, doc_vectors, doc_windows = prepared[doc.doc_id]
            starts[doc.doc_id] = len(chunks)
            chunks.extend(doc_chunks)
            parts.append(np.asarray(doc_vectors, dtype=np.float32))
            window_parts.append(doc_windows)
        if len(parts) == 1:
            vectors = parts[0]
        else:
            vectors = np.concatenate(parts) if parts else np.zeros((0, manifest.dim or 1), dtype=np.float32)
        windows = None
        if self.config.embed.windows:
            from ragtune.index.windows import concat

            windows = concat(window_parts, self.embedder.dim)
        mf.write_segment(self.path, name, chunks, vectors, windows)
        removed = sum(manifest.documents[d.doc_id].n_chunks for d in plan.todo if d.doc_id in manifest.documents)
        manifest.segments[name] = len(chunks)
        for doc in plan.todo:
            manifest.documents.pop(doc.doc_id, None)  # re-insert: a replaced document moves to the end
            manifest.documents[doc.doc_id] = mf.DocEntry(
                hash=hashes[doc.doc_id], segment=name, start=starts[doc.doc_id],
                n_chunks=len(prepared[doc.doc_id][0]), title=doc.title, source=doc.source,
                metadata=dict(doc.metadata),
            )
        self._commit(manifest, generation)
        return len(chunks), removed

    def _read_manifest_or_empty(self) -> mf.Manifest:
        """The committed manifest, or an empty one while the folder is not created yet."""
        if not (self.path / mf.MANIFEST).is_file():
            return mf.Manifest(config=self.config.model_dump())
        return mf.read_manifest(self.path)

    def _ensure_folder(self) -> None:
        """Create the index folder now (first commit), atomically; a folder another writer just created is used."""
        if not (self.path / mf.MANIFEST).is_file():
            mf.create_folder(self.path, self.config)

    def delete_documents(self, doc_ids: Sequence[str], lock_timeout_s: float | None = None) -> int:
        """Remove documents in one atomic commit; InputError (and no change) if any id is unknown.
        Returns the number of chunks removed. IndexBusyError if the lock is not free within `lock_timeout_s`."""
        with writer_lock(self.path, timeout_s=lock_timeout_s):
            manifest = mf.read_manifest(self.path)
            unknown = [d for d in doc_ids if d not in manifest.documents]
            if unknown:
                raise InputError(f"unknown document id(s) in index {self.path}: {', '.join(map(repr, unknown))}")
            removed = 0
            for doc_id in dict.fromkeys(doc_ids):
                removed += manifest.documents.pop(doc_id).n_chunks
            self._commit(manifest, manifest.generation + 1)
        return removed

    def _embed(self, texts: list[str], what: str = "Embedding") -> np.ndarray:
        embedder = self.embedder
        parts = []
        with progress_task(what, total=len(texts)) as task:
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
        precision = getattr(embedder, "precision", "fp32")
        if manifest.live_rows() and manifest.precision != precision:  # int8 and fp32 vectors never share an index
            raise ConfigError(
                f"index {self.path} holds {manifest.precision} vectors; this embedder produces {precision} ones "
                f"(re-embed with `ragtune reindex {self.path} --precision {precision} --out NEW`)"
            )
        graph = getattr(embedder, "int8_graph", 0) if precision == "int8" else 0
        if manifest.live_rows() and precision == "int8" and manifest.int8_graph != graph:  # int8 of another graph
            raise ConfigError(
                f"index {self.path} holds int8 vectors of {_int8_graph_name(manifest.int8_graph)}; this ragtune's "
                f"int8 encoder (format {graph}) makes other ones (re-embed with `ragtune reindex {self.path} "
                f"--precision int8 --out NEW`)"
            )
        manifest.embedder_id = embedder.model_id
        manifest.dim = embedder.dim
        manifest.precision = precision
        manifest.int8_graph = graph

    def _commit(self, manifest: mf.Manifest, generation: int) -> None:
        """Compact if tombstones dominate, write the manifest atomically, then collect garbage. Caller holds the lock."""
        from ragtune.version import __version__

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
        mf.write_segment(self.path, name, state.chunks, state.vectors, state.windows)
        start = 0
        for _doc_id, entry in docs_in_state_order(manifest):
            entry.segment, entry.start = name, start
            start += entry.n_chunks
        manifest.segments = {name: len(state.chunks)}
        logger.info("index %s: compacted into %s (%d live rows)", self.path, name, len(state.chunks))


def check_no_windows(uri: str, config: IndexConfig | None) -> None:
    """ConfigError when a store index (milvus://, postgresql://) is asked to keep sentence windows."""
    if config is not None and config.embed.windows:
        raise ConfigError(f"{redact_uri(uri)}: sentence windows (--windows {config.embed.windows}) are kept by folder "
                          "indexes only; leave --windows out for a store, or give a folder --index")


def _check_precomputed(doc_id: str, chunks: Sequence[Chunk], vectors: np.ndarray, dim: int, windows: Any = None) -> None:
    shape_ok = vectors.ndim == 2 and len(vectors) == len(chunks) and (not len(chunks) or vectors.shape[1] == dim)
    wrong_dim = windows is not None and len(windows.vectors) and windows.vectors.shape[1] != dim
    if windows is not None and (len(windows) != len(chunks) or wrong_dim):
        raise InputError(f"precomputed sentence windows of {doc_id!r} do not match: {len(windows)} window counts for "
                         f"{len(chunks)} chunks, window vectors of shape {tuple(windows.vectors.shape)} (dim {dim})")
    if not shape_ok or any(c.doc_id != doc_id for c in chunks):
        raise InputError(
            f"precomputed chunks of {doc_id!r} do not match: {len(chunks)} chunks, vectors of shape "
            f"{vectors.shape}, embedder dimension {dim}"
        )


# Index backends by URI scheme: (uri, "open" | "open_or_create", config, embedder) -> an Index-like object.
# ragtune.store provides them (registry.INDEX_BACKEND_PROVIDERS), imported on the first URI; an extension may
# register its own scheme.
IndexBackend = Callable[[str, str, IndexConfig | None, TextEmbedder | None], Any]
INDEX_BACKENDS: Registry[IndexBackend] = Registry("index URI scheme", providers=INDEX_BACKEND_PROVIDERS)


def _store_uri(location: Any) -> str | None:
    """The URI `location` names (an --index value), or None for a folder path."""
    return index_uri(location, INDEX_BACKENDS.names())


def index_location(index: Any) -> str:
    """How messages and records name an open index: its folder, or a store index's URI (password redacted)."""
    return str(getattr(index, "uri", None) or index.path)


def folder_path(location: str | os.PathLike) -> Path:
    """An --index value that names no store, as a folder Path. ConfigError when no such folder exists and the value
    reads as a URI (`qdrant://...`, or `postgresql:` as a Path makes of `postgresql://`): nothing is created."""
    path = Path(location)
    scheme = uri_like_scheme(location)
    if scheme is not None and not path.exists():
        known = ", ".join(f"{name}://" for name in INDEX_BACKENDS.names())
        why = f"{scheme}:// is no index backend" if scheme not in INDEX_BACKENDS.names() else "it is not a complete one"
        shown = index_uri(location, {scheme}) or str(location)  # the `//` a Path collapsed, put back
        raise ConfigError(f"--index {redact_uri(shown)!r} reads as a URI but {why}: give a folder path or a "
                          f"URI of {known} (e.g. milvus://HOST:PORT/COLLECTION)")
    return path


def _int8_graph_name(graph: int) -> str:
    return f"the quantised graph format {graph}" if graph else "an older quantised graph (format not recorded)"


def _open_backend(uri: str, how: str, config: IndexConfig | None, embedder: TextEmbedder | None) -> Any:
    scheme = uri_scheme(uri) or ""
    check_no_windows(uri, config)
    return INDEX_BACKENDS.get(scheme)(uri, how, config, embedder)


def _stats(plan: Plan, chunks_added: int, chunks_removed: int) -> IngestStats:
    return IngestStats(
        added=len(plan.todo) - plan.replaced, replaced=plan.replaced,
        unchanged=plan.unchanged + len(plan.same_content), chunks_added=chunks_added,
        chunks_removed=chunks_removed, same_content=tuple(plan.same_content),
    )
