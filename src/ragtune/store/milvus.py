"""Milvus as a VectorStore (pymilvus MilvusClient): `--index milvus://HOST:PORT/COLLECTION`.

Works against Milvus Lite (`milvus-lite server --host 127.0.0.1 --port 19530 --data-dir DIR`, what
`scripts/services.sh up` starts) and a Milvus standalone or distributed cluster alike. Credentials go in the
URI (`milvus://USER:PASSWORD@HOST:PORT/COLLECTION`), TLS with `milvus+https://`, a database with `?db=NAME`.

Two collections per index:
- COLLECTION: one row per chunk. Primary key `row_id(doc hash, chunk id)`, the dense vector (HNSW, inner
  product), the text with the engine's BM25 full-text function (sparse output), `terms` (an ARRAY of
  "field=value" strings every filter matches with `array_contains_any`), `groups` (access groups, ARRAY).
  The index config (embedder id, dimension, chunking) is a collection property, checked on every open.
- COLLECTION__docs: one row per live document (id, content hash, title, source, chunk count, metadata).

Guarantees (Milvus has no multi-statement transactions): a write upserts the new chunk rows (deterministic
keys, so two writers of the same content write the same rows), then the document record, then deletes the
document's rows of any other hash. A search sees the old or the new version of a document (briefly both),
never neither; a writer killed mid-way leaves rows that the next write of that document removes, and the
document list keeps naming the old version until then, so `ragtune ingest` re-run completes the change.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from ragtune.errors import BackendError, ConfigError, MissingExtraError
from ragtune.index.bm25 import term_texts
from ragtune.store.base import (
    MAX_TERMS,
    StoreConfig,
    StoredDocument,
    StoreFilters,
    chunk_groups,
    filter_terms,
    plan_filters,
    row_id,
    rrf_merge,
)
from ragtune.store.milvus_expr import cut, lit, lit_list, parse_milvus_uri
from ragtune.types import Chunk, Hit
from ragtune.uris import redact_uri

logger = logging.getLogger(__name__)

CONFIG_PROPERTY = "ragtune.config"
FORMAT = 1
DOCS_SUFFIX = "__docs"
WRITE_BATCH = 500  # rows per upsert call (gRPC messages stay well under the 64 MB limit)
DELETE_BATCH = 200  # documents per delete expression
MAX_TEXT = 65535  # Milvus VARCHAR limit (bytes)
MAX_ID = 4096
CHUNK_FIELDS = ["chunk_id", "doc_id", "text", "title", "position", "source", "meta"]
# Real Milvus: the built-in English analyzer (stemming, stop words), like the folder index's bm25s settings.
# Milvus Lite knows only the standard tokenizer: there ragtune writes (and asks with) the terms the folder index's
# BM25 sees — bm25s's stopwords and stemmer (`analyze`) — so keyword ranking matches it (SciFact bm25 nDCG@10
# 0.644 with raw text, see bench/bench_store.py). The analyzer and whether terms are pre-analyzed are stored
# with the config; a collection made before keeps raw text.
ANALYZERS = ({"type": "english"}, {"tokenizer": "standard"})
T = TypeVar("T")


def open_milvus_store(uri: str) -> MilvusStore:
    """Connect to Milvus (creates nothing); MissingExtraError without pymilvus, BackendError when unreachable."""
    try:
        import pymilvus  # noqa: F401
    except ImportError:
        raise MissingExtraError("pymilvus", "milvus") from None
    return MilvusStore(uri)


def _engine_call(method: Callable[..., T]) -> Callable[..., T]:
    """Turn pymilvus/gRPC failures into one-line BackendErrors naming the store."""

    @functools.wraps(method)
    def wrapper(self: MilvusStore, *args: Any, **kwargs: Any) -> T:
        from pymilvus.exceptions import MilvusException

        try:
            return method(self, *args, **kwargs)
        except MilvusException as exc:
            raise BackendError(f"milvus {self.uri}: {method.__name__} failed: {exc.message}") from None
        except (ConnectionError, OSError) as exc:
            raise BackendError(f"milvus {self.uri}: {method.__name__} failed: {exc}") from None

    return wrapper


class MilvusStore:
    """A ragtune index in two Milvus collections (see the module docstring)."""

    def __init__(self, uri: str, timeout_s: float = 10.0):
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException

        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # its RPC error logs would repeat our one line
        self.uri = redact_uri(uri)
        client_uri, token, self.collection, db = parse_milvus_uri(uri)
        self.docs_collection = self.collection + DOCS_SUFFIX
        # Keepalive pings no more often than gRPC servers accept by default (5 min); pymilvus' 10 s makes
        # Milvus Lite answer GOAWAY "too_many_pings", which gRPC prints to stderr during long idle spells.
        grpc_options = {"grpc.keepalive_time_ms": 300_000, "grpc.keepalive_permit_without_calls": False}
        kwargs: dict[str, Any] = {"uri": client_uri, "timeout": timeout_s, "grpc_options": grpc_options}
        if token:
            kwargs["token"] = token
        if db:
            kwargs["db_name"] = db
        try:
            self.client = MilvusClient(**kwargs)
        except MilvusException as exc:
            raise BackendError(f"milvus {self.uri}: cannot connect: {exc.message}") from None
        self._config: StoreConfig | None = None
        self._loaded = False
        self._analyze: Callable[[list[str]], list[str]] | None = None  # pre-analysis of BM25 text (see ANALYZERS)

    # ---- config ----------------------------------------------------------------------------------------
    @_engine_call
    def read_config(self) -> StoreConfig | None:
        if self._config is not None:
            return self._config
        if not self.client.has_collection(self.collection):
            return None
        props = self.client.describe_collection(self.collection).get("properties") or {}
        raw = props.get(CONFIG_PROPERTY)
        if raw is None:
            raise ConfigError(f"milvus {self.uri}: collection {self.collection!r} was not made by ragtune (no config)")
        data = json.loads(raw)
        self._config = StoreConfig(data["embedder_id"], int(data["dim"]), data.get("index_config", {}))
        self._analyze = term_texts(data["pre_analyzed"]) if data.get("pre_analyzed") else None
        self._ensure_loaded()
        return self._config

    @_engine_call
    def write_config(self, config: StoreConfig) -> None:
        existing = self.read_config()
        if existing is not None:
            _check_same(self.uri, existing, config)
            return
        self._create(config)
        self._config = None
        stored = self.read_config()  # another writer may have created it first: theirs wins, ours must match
        assert stored is not None
        _check_same(self.uri, stored, config)

    def _create(self, config: StoreConfig) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient
        from pymilvus.exceptions import MilvusException

        docs = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        docs.add_field("doc_id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID)
        docs.add_field("hash", DataType.VARCHAR, max_length=128)
        docs.add_field("title", DataType.VARCHAR, max_length=MAX_ID)
        docs.add_field("source", DataType.VARCHAR, max_length=MAX_ID)
        docs.add_field("n_chunks", DataType.INT64)
        docs.add_field("meta", DataType.JSON)
        docs.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus requires a vector field; unused
        docs_index = self.client.prepare_index_params()
        docs_index.add_index("v", index_type="FLAT", metric_type="L2")
        if not self.client.has_collection(self.docs_collection):
            try:
                self.client.create_collection(self.docs_collection, schema=docs, index_params=docs_index,
                                              consistency_level="Strong")
            except MilvusException:
                if not self.client.has_collection(self.docs_collection):
                    raise  # not a writer racing us to create it: a real failure
        last: Exception | None = None
        for analyzer in ANALYZERS:
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
            schema.add_field("chunk_id", DataType.VARCHAR, max_length=MAX_ID)
            schema.add_field("doc_id", DataType.VARCHAR, max_length=MAX_ID)
            schema.add_field("doc_hash", DataType.VARCHAR, max_length=128)
            schema.add_field("title", DataType.VARCHAR, max_length=MAX_ID)
            schema.add_field("source", DataType.VARCHAR, max_length=MAX_ID)
            schema.add_field("position", DataType.INT64)
            schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT)
            schema.add_field("search_text", DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True,
                             analyzer_params=analyzer)  # title + text, as the folder index's BM25 sees it
            schema.add_field("meta", DataType.JSON)
            schema.add_field("terms", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_TERMS, max_length=256)
            schema.add_field("groups", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=256, max_length=256)
            schema.add_field("vec", DataType.FLOAT_VECTOR, dim=config.dim)
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                         input_field_names=["search_text"], output_field_names=["sparse"]))
            index = self.client.prepare_index_params()
            index.add_index("vec", index_type="HNSW", metric_type="IP", params={"M": 16, "efConstruction": 200})
            index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
            stored = {"format": FORMAT, "embedder_id": config.embedder_id, "dim": config.dim,
                      "index_config": config.index_config, "analyzer": analyzer}
            if "type" not in analyzer:  # no stemming in the engine: index bm25s's terms (ANALYZERS)
                stored["pre_analyzed"] = dict((config.index_config or {}).get("bm25") or {"stemmer": "english",
                                                                                          "stopwords": "en"})
            try:
                self.client.create_collection(self.collection, schema=schema, index_params=index,
                                              consistency_level="Strong",
                                              properties={CONFIG_PROPERTY: json.dumps(stored, sort_keys=True)})
                return
            except MilvusException as exc:
                if self.client.has_collection(self.collection):
                    return  # created concurrently by another writer
                last = exc
        assert last is not None
        raise last

    def _ensure_loaded(self) -> None:
        """After a server restart a collection is released: load both before searching."""
        if self._loaded:
            return
        for name in (self.collection, self.docs_collection):
            state = self.client.get_load_state(name).get("state")
            if str(state).split(".")[-1].split(":")[0].strip("<> ") != "Loaded":
                self.client.load_collection(name)
        self._loaded = True

    def _require(self) -> StoreConfig:
        config = self.read_config()
        if config is None:
            raise BackendError(f"milvus {self.uri}: collection {self.collection!r} does not exist")
        return config

    # ---- writing ---------------------------------------------------------------------------------------
    @_engine_call
    def replace_documents(self, docs: Sequence[StoredDocument], chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        config = self._require()
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(chunks) != len(vectors) or (len(vectors) and vectors.shape[1] != config.dim):
            raise ConfigError(f"milvus {self.uri}: {len(chunks)} chunks with vectors of shape {vectors.shape}, "
                              f"collection dimension {config.dim}")
        hash_of = {d.doc_id: d.hash for d in docs}
        for start in range(0, len(chunks), WRITE_BATCH):
            batch = chunks[start:start + WRITE_BATCH]
            search_texts = self._search_texts([f"{cut(c.title, MAX_ID)}\n{c.text}" if c.title else c.text for c in batch])
            rows = [self._chunk_row(c, hash_of[c.doc_id], v, t)
                    for c, v, t in zip(batch, vectors[start:start + WRITE_BATCH], search_texts)]
            self.client.upsert(self.collection, rows)
        for start in range(0, len(docs), WRITE_BATCH):
            self.client.upsert(self.docs_collection, [
                {"doc_id": d.doc_id, "hash": d.hash, "title": cut(d.title, MAX_ID), "source": cut(d.source, MAX_ID),
                 "n_chunks": d.n_chunks, "meta": d.metadata, "v": [0.0, 0.0]}
                for d in docs[start:start + WRITE_BATCH]
            ])
        self.remove_stray_rows(docs)  # the old version's rows, now that the records name the new one

    @staticmethod
    def _chunk_row(chunk: Chunk, doc_hash: str, vector: np.ndarray, search_text: str) -> dict[str, Any]:
        """One row; search_text is title + text as the BM25 function gets it (`_search_texts`)."""
        title = cut(chunk.title, MAX_ID)
        return {
            "pk": row_id(doc_hash, chunk.chunk_id), "chunk_id": chunk.chunk_id, "doc_id": chunk.doc_id,
            "doc_hash": doc_hash, "title": title, "source": cut(chunk.source, MAX_ID), "position": chunk.position,
            "text": cut(chunk.text, MAX_TEXT), "search_text": cut(search_text, MAX_TEXT),
            "meta": chunk.metadata, "terms": filter_terms(chunk), "groups": chunk_groups(chunk), "vec": vector.tolist(),
        }

    def _search_texts(self, texts: Sequence[str]) -> list[str]:
        """Texts as the BM25 function gets them: as they are, or bm25s's terms joined by spaces (ANALYZERS)."""
        return self._analyze(list(texts)) if self._analyze is not None else list(texts)

    @_engine_call
    def remove_stray_rows(self, docs: Sequence[StoredDocument]) -> None:
        """Delete chunk rows of another version than each document's record: a replaced document's old rows, and
        what a writer killed between a changed document's new rows and its record leaves (StoreIndex calls it then)."""
        for start in range(0, len(docs), DELETE_BATCH):
            expr = " or ".join(f"(doc_id == {lit(d.doc_id)} and doc_hash != {lit(d.hash)})"
                               for d in docs[start:start + DELETE_BATCH])
            self.client.delete(self.collection, filter=expr)

    @_engine_call
    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        if self.read_config() is None:
            return 0
        removed = 0
        ids = list(dict.fromkeys(doc_ids))
        for start in range(0, len(ids), DELETE_BATCH):
            expr = f"doc_id in {lit_list(ids[start:start + DELETE_BATCH])}"
            removed += self._count(self.collection, expr)
            self.client.delete(self.collection, filter=expr)  # chunks first: a kill leaves a listed document
            self.client.delete(self.docs_collection, filter=expr)
        return removed

    # ---- reading ---------------------------------------------------------------------------------------
    def _count(self, collection: str, expr: str = "") -> int:
        result = self.client.query(collection, filter=expr, output_fields=["count(*)"])
        return int(result[0]["count(*)"]) if result else 0

    def _iterate(self, collection: str, fields: list[str], expr: str, batch_size: int = 1000) -> Iterator[list[dict]]:
        iterator = self.client.query_iterator(collection, batch_size=batch_size, filter=expr, output_fields=fields)
        try:
            while True:
                batch = iterator.next()
                if not batch:
                    return
                yield batch
        finally:
            iterator.close()

    @_engine_call
    def list_documents(self) -> list[StoredDocument]:
        if self.read_config() is None:
            return []
        docs = [
            StoredDocument(r["doc_id"], r["hash"], r["title"], r["source"], int(r["n_chunks"]), dict(r["meta"] or {}))
            for batch in self._iterate(self.docs_collection, ["doc_id", "hash", "title", "source", "n_chunks", "meta"],
                                       'doc_id != ""')
            for r in batch
        ]
        return sorted(docs, key=lambda d: d.doc_id)

    @_engine_call
    def count(self) -> int:
        if self.read_config() is None:
            return 0
        return self._count(self.collection)

    @_engine_call
    def get_chunks(self, chunk_ids: Sequence[str]) -> list[Chunk | None]:
        self._require()
        found: dict[str, Chunk] = {}
        ids = list(dict.fromkeys(chunk_ids))
        for start in range(0, len(ids), 1000):
            part = ids[start:start + 1000]
            for row in self.client.query(self.collection, filter=f"chunk_id in {lit_list(part)}",
                                         output_fields=CHUNK_FIELDS, limit=len(part) * 4):
                found[row["chunk_id"]] = _chunk(row)
        return [found.get(c) for c in chunk_ids]

    @_engine_call
    def iter_chunks(self, batch_size: int = 1000) -> Iterator[list[Chunk]]:
        if self.read_config() is None:
            return iter(())
        rows = [_chunk(r) for batch in self._iterate(self.collection, CHUNK_FIELDS, 'pk != ""', batch_size) for r in batch]
        rows.sort(key=lambda c: (c.doc_id, c.position))
        return iter([rows[i:i + batch_size] for i in range(0, len(rows), batch_size)])

    # ---- searching -------------------------------------------------------------------------------------
    def _filter_expr(self, filters: StoreFilters | None) -> str | None:
        """The Milvus boolean expression for filters ("" = none); None when nothing can match."""
        plan = plan_filters(filters)
        if plan.empty:
            return None
        clauses = [f"array_contains_any(terms, {lit_list(list(terms))})" for terms in plan.any_of]
        if plan.access_groups is not None:
            public = "array_length(groups) == 0"
            clauses.append(f"({public} or array_contains_any(groups, {lit_list(list(plan.access_groups))}))"
                           if plan.access_groups else public)
        return " and ".join(clauses)

    @_engine_call
    def dense_search(self, vectors: np.ndarray, k: int, filters: StoreFilters | None = None) -> list[list[Hit]]:
        config = self._require()
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(vectors) and vectors.shape[1] != config.dim:
            raise ConfigError(f"milvus {self.uri}: query vectors have dimension {vectors.shape[1]}, "
                              f"the collection {config.dim} (built with {config.embedder_id!r})")
        expr = self._filter_expr(filters)
        if expr is None or not len(vectors):
            return [[] for _ in range(len(vectors))]
        result = self.client.search(
            self.collection, data=vectors.tolist(), anns_field="vec", limit=k, filter=expr,
            output_fields=CHUNK_FIELDS, search_params={"metric_type": "IP", "params": {"ef": max(64, k)}},
        )
        return [_hits(per_query) for per_query in result]

    @_engine_call
    def keyword_search(self, queries: Sequence[str], k: int, filters: StoreFilters | None = None) -> list[list[Hit]]:
        self._require()
        expr = self._filter_expr(filters)
        out: list[list[Hit]] = [[] for _ in queries]
        queries = self._search_texts(queries)
        todo = [i for i, q in enumerate(queries) if q.strip()]
        if expr is None or not todo:
            return out
        result = self.client.search(
            self.collection, data=[queries[i] for i in todo], anns_field="sparse", limit=k, filter=expr,
            output_fields=CHUNK_FIELDS, search_params={"metric_type": "BM25"},
        )
        for i, per_query in zip(todo, result):
            out[i] = _hits(per_query, bm25=True)
        return out

    @_engine_call
    def hybrid_search(
        self, queries: Sequence[str], vectors: np.ndarray, k: int, filters: StoreFilters | None = None,
        candidates: int = 100, rrf_k: int = 60, weights: tuple[float, float] = (1.0, 1.0),
    ) -> list[list[Hit]]:
        from pymilvus import AnnSearchRequest, RRFRanker

        self._require()
        expr = self._filter_expr(filters)
        if expr is None or not len(queries):
            return [[] for _ in queries]
        depth = max(candidates, k)
        if tuple(weights) != (1.0, 1.0) or any(not q.strip() for q in self._search_texts(queries)):
            # RRFRanker has no per-ranking weights (and an empty text has no BM25 ranking): fuse here
            dense = self.dense_search(vectors, depth, filters)
            keyword = self.keyword_search(queries, depth, filters)
            return [rrf_merge(d, kw, k, rrf_k, weights) for d, kw in zip(dense, keyword)]
        requests = [
            AnnSearchRequest(data=np.asarray(vectors, dtype=np.float32).tolist(), anns_field="vec",
                             param={"metric_type": "IP", "params": {"ef": max(64, depth)}}, limit=depth, expr=expr),
            AnnSearchRequest(data=self._search_texts(queries), anns_field="sparse", param={"metric_type": "BM25"}, limit=depth,
                             expr=expr),
        ]
        result = self.client.hybrid_search(self.collection, requests, ranker=RRFRanker(rrf_k), limit=k,
                                           output_fields=CHUNK_FIELDS)
        return [_hits(per_query) for per_query in result]

    @_engine_call
    def flush(self) -> None:
        """Seal what was written so it is searched through the vector index: Milvus Lite searches unsealed rows
        by brute force in Python (12k rows: ~3 s per query before, ~0.2 s after, on a loaded 2-core machine).
        StoreIndex calls it once per add/delete, not per batch (each flush seals a segment)."""
        if self.read_config() is not None:
            self.client.flush(self.collection)

    # ---- lifecycle -------------------------------------------------------------------------------------
    @_engine_call
    def drop(self) -> None:
        for name in (self.collection, self.docs_collection):
            if self.client.has_collection(name):
                self.client.drop_collection(name)
        self._config = None
        self._loaded = False
        self._analyze = None

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a dead connection must not mask the real error
            logger.debug("closing milvus client for %s failed", self.uri, exc_info=True)

    def fingerprint(self) -> str:
        """Changes whenever the live documents change (the StoreIndex generation)."""
        digest = hashlib.sha256()
        for doc in self.list_documents():
            digest.update(f"{doc.doc_id}\x00{doc.hash}\x01".encode())
        return digest.hexdigest()


def _check_same(uri: str, stored: StoreConfig, wanted: StoreConfig) -> None:
    if (stored.embedder_id, stored.dim) != (wanted.embedder_id, wanted.dim):
        raise ConfigError(
            f"index {uri} was built with embedder {stored.embedder_id!r} (dimension {stored.dim}), "
            f"not {wanted.embedder_id!r} (dimension {wanted.dim})"
        )


def _chunk(row: dict[str, Any]) -> Chunk:
    return Chunk(chunk_id=row["chunk_id"], doc_id=row["doc_id"], text=row["text"], title=row["title"],
                 position=int(row["position"]), source=row["source"], metadata=dict(row["meta"] or {}))


def _hits(per_query: Sequence[dict[str, Any]], bm25: bool = False) -> list[Hit]:
    out = []
    for hit in per_query:
        score = float(hit["distance"])
        if bm25:
            score = abs(score)  # BM25 scores are >= 0; Milvus Lite reports them negated
            if score <= 0:
                continue
        out.append(Hit(chunk=_chunk(hit["entity"]), score=score, rank=len(out)))
    return out
