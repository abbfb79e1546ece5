"""StoreIndex: what the rest of ragtune uses of an Index, over a VectorStore in a database engine.

`Index.open("milvus://HOST:PORT/COLLECTION")` (and open_or_create/create) returns one; retrievers in the
dense/bm25/hybrid modes call the store's own searches (ragtune.retrieve.store), so filters and ranking run
inside the engine. Dedupe by content hash, replace-on-change and delete behave as in the folder index; the
engine, not a local file lock, arbitrates concurrent writers (see each backend's docstring for guarantees).

Derived local files (the entity graph) live in a side folder under the ragtune cache dir, keyed by the URI:
`index.path`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ragtune.config import BUNDLED, IndexConfig, built_with_another
from ragtune.errors import ConfigError, InputError, NotBuiltError
from ragtune.index.embed import embedder_for, stored_config, with_precision
from ragtune.store.base import StoreConfig, StoredDocument, VectorStore
from ragtune.store.registry import open_store
from ragtune.types import Chunk, Document
from ragtune.uris import redact_uri

logger = logging.getLogger(__name__)

WRITE_DOCS = 256  # documents per replace_documents call: bounded memory, each call complete on its own


class StoreSnapshot:
    """All live chunks of a store at one generation, loaded (for the graph and chunk-walking builders).

    Quacks like ragtune.index.IndexState where those use it: chunks, row_of, generation, manifest.documents
    (doc id -> .hash), metadata_index()."""

    def __init__(self, chunks: list[Chunk], documents: list[StoredDocument], generation: int):
        self.chunks = chunks
        self.row_of = {c.chunk_id: i for i, c in enumerate(chunks)}
        self.generation = generation
        self.manifest = SimpleNamespace(documents={d.doc_id: d for d in documents}, generation=generation)
        self._meta: Any = None
        self._lock = threading.Lock()

    def metadata_index(self) -> Any:
        with self._lock:
            if self._meta is None:
                from ragtune.index.metadata import MetadataIndex

                self._meta = MetadataIndex(self.chunks)
            return self._meta

    def cache_key(self) -> str:
        return f"{self.generation:x}"


class StoreIndex:
    """An index kept by a VectorStore; same reading and writing API as ragtune.index.Index."""

    is_store = True  # retrievers use the engine's searches (ragtune.retrieve.factory)

    def __init__(self, store: VectorStore, uri: str, config: IndexConfig, embedder: Any = None):
        self.store = store
        self.uri = redact_uri(uri)
        self.config = with_precision(config)
        self._embedder = embedder
        self._docs: list[StoredDocument] | None = None
        self._snapshot: StoreSnapshot | None = None
        self._lock = threading.Lock()

    # ---- opening -------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, uri: str, embedder: Any = None) -> StoreIndex:
        """Open an existing store index; NotBuiltError if its collection does not exist."""
        store = open_store(uri)
        stored = store.read_config()
        if stored is None:
            store.close()
            raise NotBuiltError(f"no index at {redact_uri(uri)}; build it with `ragtune ingest PATH --index {redact_uri(uri)}`")
        return cls(store, uri, _index_config(uri, stored), embedder)

    @classmethod
    def open_or_create(cls, uri: str, config: IndexConfig | None = None, embedder: Any = None) -> StoreIndex:
        """Open, or prepare a new one (its collection is created by the first write); another config: ConfigError."""
        store = open_store(uri)
        stored = store.read_config()
        if stored is None:
            return cls(store, uri, config or IndexConfig(), embedder)
        existing = _index_config(uri, stored)
        if config is not None and existing != with_precision(config, like=existing):
            store.close()
            raise ConfigError(built_with_another(redact_uri(uri), existing, with_precision(config, like=existing)))
        return cls(store, uri, existing, embedder)

    create = open_or_create

    def close(self) -> None:
        self.store.close()

    # ---- reading -------------------------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """A local side folder for derived files (the entity graph), one per store URI (created on first use)."""
        from ragtune.paths import cache_dir

        folder = Path(cache_dir()) / "stores" / hashlib.sha256(self.uri.encode()).hexdigest()[:16]
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            self._embedder = embedder_for(self.config.embed)
        return self._embedder

    def _documents(self) -> list[StoredDocument]:
        with self._lock:
            if self._docs is None:
                self._docs = self.store.list_documents()
            return self._docs

    @property
    def generation(self) -> int:
        """A number that changes whenever the live documents change (not a counter)."""
        digest = hashlib.sha256()
        for doc in self._documents():
            digest.update(f"{doc.doc_id}\x00{doc.hash}\x01".encode())
        return int(digest.hexdigest()[:12], 16)

    def reload(self) -> None:
        """Forget cached document lists and snapshots: the next read sees other writers' changes."""
        with self._lock:
            self._docs = None

    def __len__(self) -> int:
        return self.store.count()

    def documents(self) -> list[Any]:
        """Live documents (ragtune.index.DocumentInfo), ordered by doc id."""
        from ragtune.index.state import DocumentInfo

        return [DocumentInfo(d.doc_id, d.title, d.source, d.hash, d.n_chunks, dict(d.metadata)) for d in self._documents()]

    @property
    def state(self) -> StoreSnapshot:
        """Every live chunk, loaded once per generation (graph, synth and RAFT builders walk chunks)."""
        generation = self.generation
        snapshot = self._snapshot
        if snapshot is None or snapshot.generation != generation:
            chunks = [c for batch in self.store.iter_chunks() for c in batch]
            snapshot = StoreSnapshot(chunks, self._documents(), generation)
            self._snapshot = snapshot
        return snapshot

    def chunks(self) -> list[Chunk]:
        return list(self.state.chunks)

    def get_chunks(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        """Chunks by id, in the order asked; InputError naming the first unknown id."""
        found = self.store.get_chunks(list(chunk_ids))
        for chunk_id, chunk in zip(chunk_ids, found):
            if chunk is None:
                raise InputError(f"unknown chunk id {chunk_id!r} in index {self.uri}")
        return [c for c in found if c is not None]

    # ---- writing -------------------------------------------------------------------------------------------
    def add_documents(self, docs: Iterable[Document], dedupe_content: bool = False, lock_timeout_s: float | None = None,
                      *, precomputed: Any = None) -> Any:
        """Add or replace documents (see ragtune.index.Index.add_documents). `lock_timeout_s` is accepted for
        the same signature; the engine arbitrates concurrent writers. `precomputed` (doc id -> its chunks and
        vectors, from Ray workers) spares those documents the chunking and embedding here."""
        from ragtune.index.plan import latest_documents, make_plan
        from ragtune.index.state import IngestStats

        latest, hashes = latest_documents(docs)
        self.reload()
        live = {d.doc_id: d for d in self._documents()}
        self._remove_stray_rows(list(live.values()))
        plan = make_plan(SimpleNamespace(documents=live), latest, hashes, dedupe_content)
        chunks_added = 0
        if plan.todo:
            self._check_embedder()
            for start in range(0, len(plan.todo), WRITE_DOCS):
                chunks_added += self._write(plan.todo[start:start + WRITE_DOCS], hashes, precomputed or {})
        removed = sum(live[d.doc_id].n_chunks for d in plan.todo if d.doc_id in live)
        if plan.todo:
            self._flush()
        self.reload()
        stats = IngestStats(
            added=len(plan.todo) - plan.replaced, replaced=plan.replaced,
            unchanged=plan.unchanged + len(plan.same_content), chunks_added=chunks_added,
            chunks_removed=removed, same_content=tuple(plan.same_content),
        )
        if plan.todo:
            logger.info("index %s: %s", self.uri, stats)
            from ragtune.index.hooks import run_commit_hooks

            run_commit_hooks(self)
        return stats

    def fill_new(self, documents: Sequence[Any], chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Fill this new collection with embedded rows (`ragtune reindex`): `documents` (DocumentInfo-like) in the
        order of their chunks, WRITE_DOCS per write. ConfigError if it holds documents already; a failed write
        drops the collection again."""
        if len(self) or self._documents():
            raise ConfigError(f"{self.uri} holds an index already; re-embed into a new collection")
        self._check_embedder()  # creates the collection for this embedder
        counts: dict[str, int] = {}
        for chunk in chunks:
            counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
        start = 0
        try:
            for first in range(0, len(documents), WRITE_DOCS):
                batch = documents[first:first + WRITE_DOCS]
                n = sum(counts.get(d.doc_id, 0) for d in batch)
                records = [StoredDocument(d.doc_id, d.hash, d.title, d.source, counts.get(d.doc_id, 0), dict(d.metadata))
                           for d in batch]
                self.store.replace_documents(records, chunks[start:start + n], np.asarray(vectors[start:start + n]))
                start += n
            self._flush()
        except BaseException:
            self.store.drop()
            raise
        self.reload()

    def _write(self, docs: list[Document], hashes: dict[str, str], precomputed: Any = None) -> int:
        from ragtune.index.embed import chunk_embed_text, encode_in_steps
        from ragtune.ingest import chunk_documents, load_tokenizer

        ready = {d.doc_id: precomputed[d.doc_id] for d in docs if precomputed and d.doc_id in precomputed}
        rest = [d for d in docs if d.doc_id not in ready]
        model_name = self.config.embed.model
        new_chunks: list[Chunk] = []
        if rest:
            tokenizer = load_tokenizer(BUNDLED if model_name.startswith("hash") else model_name)
            new_chunks = chunk_documents(rest, self.config.chunk, tokenizer)
        texts = [chunk_embed_text(c.title, c.text) for c in new_chunks]
        if texts:
            new_vectors = encode_in_steps(self.embedder, texts, self.config.embed.batch_size, lambda n: None)
        else:
            new_vectors = np.zeros((0, self.embedder.dim), dtype=np.float32)
        chunks = [c for doc_id in ready for c in ready[doc_id][0]] + new_chunks
        parts = [np.asarray(ready[doc_id][1], dtype=np.float32).reshape(-1, self.embedder.dim) for doc_id in ready]
        vectors = np.concatenate([*parts, np.asarray(new_vectors, dtype=np.float32)]) if parts else new_vectors
        counts: dict[str, int] = {}
        for chunk in chunks:
            counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
        records = [StoredDocument(d.doc_id, hashes[d.doc_id], d.title, d.source, counts.get(d.doc_id, 0), dict(d.metadata))
                   for d in docs]
        self.store.replace_documents(records, chunks, np.asarray(vectors, dtype=np.float32))
        return len(chunks)

    def _remove_stray_rows(self, live: list[StoredDocument]) -> None:
        """More rows than the records count: a killed writer's rows of another version (engines without
        multi-statement transactions, Milvus); removed before planning, so an unchanged re-run heals them."""
        remove = getattr(self.store, "remove_stray_rows", None)
        if remove is None or not live or self.store.count() <= sum(d.n_chunks for d in live):
            return
        logger.warning("index %s holds rows of other document versions (a writer was killed): removing them", self.uri)
        remove(live)
        self._flush()
        self.reload()

    def _check_embedder(self) -> None:
        """Create the collection for this embedder, or check it is the one the collection was built with."""
        from ragtune.index.embed import vectors_id_of

        embedder = self.embedder
        self.store.write_config(StoreConfig(vectors_id_of(embedder), embedder.dim, self.config.model_dump()))

    def check_query_embedder(self) -> None:
        """ConfigError when this index's embedder is not the one its collection was built with."""
        stored = self.store.read_config()
        embedder = self.embedder
        from ragtune.index.embed import vectors_id_of

        wanted = vectors_id_of(embedder)
        if stored is not None and (stored.embedder_id, stored.dim) != (wanted, embedder.dim):
            raise ConfigError(f"index {self.uri} was built with embedder {stored.embedder_id!r} "
                              f"(dimension {stored.dim}), not {wanted!r} (dimension {embedder.dim})")

    def _flush(self) -> None:
        """Backends that buffer writes (Milvus) seal them once per add/delete; optional in the protocol."""
        flush = getattr(self.store, "flush", None)
        if flush is not None:
            flush()

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Remove documents; InputError (and no change) if any id is unknown. Returns chunks removed."""
        self.reload()
        live = {d.doc_id for d in self._documents()}
        unknown = [d for d in doc_ids if d not in live]
        if unknown:
            raise InputError(f"unknown document id(s) in index {self.uri}: {', '.join(map(repr, unknown))}")
        removed = self.store.delete_documents(list(dict.fromkeys(doc_ids)))
        self._flush()
        self.reload()
        from ragtune.index.hooks import run_commit_hooks

        run_commit_hooks(self)
        return removed


def _index_config(uri: str, stored: StoreConfig) -> IndexConfig:
    try:
        return stored_config(stored.index_config)
    except ValueError as exc:
        raise ConfigError(f"index {redact_uri(uri)}: stored config is not a ragtune IndexConfig: {exc}") from None


def open_store_index(uri: str, how: str, config: IndexConfig | None, embedder: Any) -> StoreIndex:
    """The index backend ragtune.index.Index dispatches a store URI to (how: "open" | "open_or_create")."""
    return StoreIndex.open(uri, embedder) if how == "open" else StoreIndex.open_or_create(uri, config, embedder)
