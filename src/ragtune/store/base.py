"""The VectorStore contract: chunks, vectors and documents kept by a database engine, searched inside it.

Every backend (Milvus, PostgreSQL/pgvector, ...) implements `VectorStore`; `ragtune.store.index.StoreIndex`
turns one into what the rest of ragtune uses of an Index. The folder index (ragtune.index.Index) is not a
VectorStore: it stays the default and keeps its own crash-safe format.

Rules every backend keeps (tests/store/test_store_conformance.py checks them):
- Batch first: writes take many documents at once, searches take many queries at once.
- Row identity is deterministic: `row_id(doc_hash, chunk_id)` (document content hash + doc id + position),
  so two writers storing the same content write the same rows (upsert), never duplicates.
- `replace_documents` makes each given document's chunks exactly the new ones. On an engine with
  transactions (Postgres) it is one transaction; on one without (Milvus) the new rows are upserted first,
  then the document record, then the old rows deleted, so a reader sees the old or the new version (briefly
  both, never neither) and a killed writer leaves rows that the next write of the document removes.
- Filters are applied inside the engine before the top-k (never after): see `filter_terms`.
- Vectors are L2-normalised float32; dense scores are inner products (cosine).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ragtune.access import ACCESS_FIELD, GROUPS_FIELD  # noqa: F401  (the store's filter vocabulary)
from ragtune.types import Chunk, Hit

if TYPE_CHECKING:
    import numpy as np

# {"field": value} or {"field": [v1, v2]}; fields are chunk metadata keys plus "doc_id" and "source". A field
# matches when a chunk's value is one of the wanted values (a list-valued field: shares one); fields AND.
# The special field ACCESS_FIELD takes the caller's groups: public chunks (no groups) plus chunks sharing one.
StoreFilters = Mapping[str, Any]

SPECIAL_FIELDS = ("doc_id", "source")
MAX_TERM_CHARS = 200  # longer filter terms are stored hashed (engines cap array element length)
MAX_TERMS = 1000  # filter terms kept per chunk (Milvus caps array capacity); extra values are not filterable


@dataclass(frozen=True)
class StoredDocument:
    """A live document of a store: what `list_documents` returns and `replace_documents` writes."""

    doc_id: str
    hash: str  # ragtune.ingest.document_hash: dedupe and replace-on-change compare these
    title: str = ""
    source: str = ""
    n_chunks: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreConfig:
    """The index config a store keeps in the engine, checked on every open and write."""

    # the vectors' id (ragtune.index.embed.vectors_id): the embedder's model id, e.g.
    # "sentence-transformers/all-MiniLM-L6-v2" or "hash:64", with "@int8:FORMAT" for quantised vectors
    embedder_id: str
    dim: int
    index_config: dict[str, Any] = field(default_factory=dict)  # ragtune.config.IndexConfig.model_dump()


@runtime_checkable
class VectorStore(Protocol):
    """A collection of chunks with vectors in a database engine. Thread-safe for concurrent readers."""

    uri: str  # as given, without credentials (for messages)

    # ---- config ----------------------------------------------------------------------------------------
    def read_config(self) -> StoreConfig | None:
        """The stored config, or None for a collection that does not exist yet (nothing is created)."""
        ...

    def write_config(self, config: StoreConfig) -> None:
        """Create the collection for config (vector dimension config.dim) if missing and store config; an
        existing collection with another embedder id or dimension: ConfigError naming both."""
        ...

    # ---- writing ---------------------------------------------------------------------------------------
    def replace_documents(self, docs: Sequence[StoredDocument], chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Make each of docs live with exactly its chunks (rows of `vectors`, (n, dim) float32, in chunk
        order); any older version of those documents is removed. Every chunk belongs to one of docs;
        chunk.metadata carries the document metadata (incl. access groups)."""
        ...

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Remove documents and their chunks; returns the number of chunks removed (unknown ids: 0)."""
        ...

    # ---- reading ---------------------------------------------------------------------------------------
    def list_documents(self) -> list[StoredDocument]:
        """Every live document with its content hash, ordered by doc id."""
        ...

    def count(self) -> int:
        """Number of live chunks."""
        ...

    def get_chunks(self, chunk_ids: Sequence[str]) -> list[Chunk | None]:
        """Chunks by chunk id, in the order asked; None for an unknown id."""
        ...

    def iter_chunks(self, batch_size: int = 1000) -> Any:
        """Every live chunk (Iterator[list[Chunk]] in batches), ordered by (doc id, position)."""
        ...

    # ---- searching (filters inside the engine, before the top-k) ---------------------------------------
    def dense_search(self, vectors: np.ndarray, k: int, filters: StoreFilters | None = None) -> list[list[Hit]]:
        """For each query vector ((nq, dim) float32), up to k hits by inner product, best first."""
        ...

    def keyword_search(self, queries: Sequence[str], k: int, filters: StoreFilters | None = None) -> list[list[Hit]]:
        """For each query, up to k hits by the engine's full-text ranking (Milvus: BM25; Postgres:
        ts_rank_cd); chunks sharing no term with the query are not returned."""
        ...

    def hybrid_search(
        self, queries: Sequence[str], vectors: np.ndarray, k: int, filters: StoreFilters | None = None,
        candidates: int = 100, rrf_k: int = 60, weights: tuple[float, float] = (1.0, 1.0),
    ) -> list[list[Hit]]:
        """Dense and keyword rankings, each `candidates` deep, fused by weighted RRF
        (sum of w / (rrf_k + rank)) inside the engine where it can; the score is the fused score."""
        ...

    def drop(self) -> None:
        """Delete the whole collection (data and config); used by tests and `ragtune` tooling."""
        ...

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...


# ---- helpers every backend shares ------------------------------------------------------------------------
def row_id(doc_hash: str, chunk_id: str) -> str:
    """The deterministic primary key of a chunk row: same document content and position -> same key.

    Length-bounded (64 hex chars) so any doc id fits an engine's VARCHAR key."""
    return hashlib.sha256(f"{doc_hash}\x00{chunk_id}".encode()).hexdigest()


def value_key(value: Any) -> str:
    """Canonical text of a scalar metadata or filter value: the same as the folder index's
    (ragtune.index.metadata.value_key), so `--filter year=2020` matches 2020 on every backend."""
    from ragtune.index.metadata import value_key as folder_value_key

    return folder_value_key(value)


def _term(field_name: str, value: Any) -> str:
    term = f"{field_name}={value_key(value)}"
    if len(term) > MAX_TERM_CHARS:
        term = f"{field_name}#sha1:{hashlib.sha1(term.encode()).hexdigest()}"
    return term


def filter_terms(chunk: Chunk) -> list[str]:
    """The terms a chunk row stores for filtering: "doc_id=…", "source=…" and "key=value" for every
    metadata value (one per element of a list value). A filter {f: [v1, v2]} then is "the row's terms
    contain one of f=v1, f=v2" — an array-contains-any that every engine evaluates before ranking."""
    terms = [_term("doc_id", chunk.doc_id), _term("source", chunk.source)]
    for key, value in chunk.metadata.items():
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        terms.extend(_term(str(key), v) for v in values)
    return list(dict.fromkeys(terms))[:MAX_TERMS]


def chunk_groups(chunk: Chunk) -> list[str]:
    """The access groups of a chunk (empty = public), as stored in the engine's groups array field."""
    value = chunk.metadata.get(GROUPS_FIELD)
    if not value:
        return []
    values = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
    return sorted({str(v) for v in values})


@dataclass(frozen=True)
class FilterPlan:
    """Filters compiled for an engine: AND over `any_of` term groups, plus an optional access clause."""

    any_of: tuple[tuple[str, ...], ...] = ()  # each: row terms must contain at least one
    access_groups: tuple[str, ...] | None = None  # None = no access clause; else public or sharing one
    empty: bool = False  # some field wanted no value at all: nothing can match


def plan_filters(filters: StoreFilters | None) -> FilterPlan:
    """Turn a filters mapping into terms; InputError for a non-mapping."""
    from ragtune.errors import InputError

    if not filters:
        return FilterPlan()
    if not hasattr(filters, "items"):
        raise InputError(f"filters must be a mapping of field -> value(s), got {filters!r}")
    any_of: list[tuple[str, ...]] = []
    access: tuple[str, ...] | None = None
    empty = False
    for key, wanted in filters.items():
        values = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
        if key == ACCESS_FIELD:
            access = tuple(sorted({str(v) for v in values}))
            continue
        terms = tuple(dict.fromkeys(_term(str(key), v) for v in values))
        if not terms:
            empty = True
        any_of.append(terms)
    return FilterPlan(tuple(any_of), access, empty)


def rrf_merge(
    dense: Sequence[Hit], keyword: Sequence[Hit], k: int, rrf_k: int = 60, weights: tuple[float, float] = (1.0, 1.0)
) -> list[Hit]:
    """Weighted RRF of two hit lists by chunk id, for backends that fuse client-side (same tie-breaks as
    ragtune.retrieve.rrf_fuse: best single rank, then chunk id)."""
    fused: dict[str, float] = {}
    best: dict[str, int] = {}
    chunks: dict[str, Chunk] = {}
    for hits, weight in ((dense, weights[0]), (keyword, weights[1])):
        if weight <= 0:
            continue
        for rank, hit in enumerate(hits, start=1):
            cid = hit.chunk.chunk_id
            fused[cid] = fused.get(cid, 0.0) + weight / (rrf_k + rank)
            best[cid] = min(best.get(cid, rank), rank)
            chunks.setdefault(cid, hit.chunk)
    order = sorted(fused, key=lambda c: (-fused[c], best[c], c))[:k]
    return [Hit(chunk=chunks[c], score=fused[c], rank=i) for i, c in enumerate(order)]
