"""PostgreSQL + pgvector backend: `postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE?collection=NAME`.

A collection NAME is two tables: `rt_NAME` holds the chunks (chunk id, document id, text, title, source,
metadata jsonb, access groups text[], content hash, position, `embedding vector(dim)`, a generated
`tsv tsvector`) with an HNSW index on the vector (cosine) and GIN indexes on the tsvector, the groups and the
metadata; `rt_NAME_docs` holds one row per live document. The index config (embedder id, dimension, chunking)
is a row of `ragtune_collections`; writing with another embedder or dimension is a ConfigError.

Full text is Postgres' own: `ts_rank_cd` (cover density) over an OR of the query's stemmed words. That is NOT
BM25 (no IDF, no saturation): on SciFact it costs nDCG@10 against bm25s — see bench/bench_store_postgres.py.
Hybrid is one SQL statement: dense and keyword top-N as CTEs, fused by weighted RRF in SQL. Filters (metadata
key=value, doc ids, access groups) are WHERE clauses, so they apply before the LIMIT, never after.

Every write (a document replace = delete + insert) is one transaction, so a killed writer or a dropped
connection leaves the old or the new state. Writers take a transaction-level advisory lock per document (in
doc id order, so no deadlocks): the same document written by two processes at once ends with one copy.
The password comes from the URI or PGPASSWORD (libpq's own lookup); errors never show it.
"""

from __future__ import annotations

import json
import queue
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import numpy as np

from ragtune.errors import BackendError, ConfigError, InputError, MissingExtraError
from ragtune.store.base import ACCESS_FIELD, SPECIAL_FIELDS, StoreConfig, StoredDocument, StoreFilters, chunk_groups, value_key
from ragtune.uris import redact_uri
from ragtune.types import Chunk, Hit

COLLECTIONS = "ragtune_collections"
NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
# An OR of the query's stemmed words: plainto_tsquery ANDs them (and joins hyphenated parts with <->), which
# recalls almost nothing for a question; rewriting its operators keeps its tokenising, stemming and stop words.
TSQUERY = "(SELECT replace(replace(plainto_tsquery('english', %(q)s)::text, ' & ', ' | '), ' <-> ', ' | ')::tsquery AS q) tq"
# ts_rank_cd normalisation 4: divide by the mean harmonic distance between extents. Chosen on SciFact TRAIN
# (400 queries: 4 -> 0.4587 nDCG@10, 1 (length) -> 0.4456); test: 4 -> 0.4765, 1 -> 0.4432, 0 -> 0.4141.
TS_NORM = 4
CHUNK_COLS = ("id", "doc_id", "text", "title", "position", "source", "metadata")
SELECT_CHUNK = ", ".join(f"c.{c}" for c in CHUNK_COLS)


def parse_uri(uri: str) -> tuple[str, str]:
    """`postgresql://USER@HOST:PORT/DATABASE?collection=NAME` -> (libpq conninfo, collection name).

    The collection must be named (as a Milvus URI's path must): a default would let two teams' commands share one
    table unawares. Other query parameters (sslmode=..., ...) pass through to libpq."""
    parts = urlsplit(uri)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise ConfigError(f"not a PostgreSQL URI: {redact_uri(uri)!r} (expected postgresql://USER@HOST:PORT/DATABASE?collection=NAME)")
    query = parse_qs(parts.query, keep_blank_values=True)
    if "collection" not in query:
        raise ConfigError(f"{redact_uri(uri)} names no collection: add ?collection=NAME (tables rt_NAME and rt_NAME_docs)")
    names = query.pop("collection")
    collection = names[-1].strip()
    if not NAME.match(collection):
        raise ConfigError(f"bad collection name {collection!r} in {redact_uri(uri)}: use 1-41 of lowercase letters, "
                          "digits and _ (not a digit first)")
    rest = "&".join(f"{k}={v}" for k, vs in query.items() for v in vs)
    return urlunsplit(("postgresql", parts.netloc, parts.path, rest, "")), collection


def _psycopg() -> Any:
    try:
        import psycopg
        import pgvector.psycopg  # noqa: F401  (checked here so a missing piece names the extra)
    except ImportError as err:
        raise MissingExtraError("psycopg", "postgres") from err
    return psycopg


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300] or type(err).__name__


def open_postgres_store(uri: str) -> PostgresStore:
    """The registry's factory for postgresql:// and postgres:// (connects; creates nothing)."""
    return PostgresStore(uri)


class PostgresStore:
    """A VectorStore in a PostgreSQL database with pgvector. Thread-safe: each call borrows a pooled connection."""

    def __init__(self, uri: str, connect_timeout_s: float = 10.0):
        self._psycopg = _psycopg()
        self.uri = redact_uri(uri)
        self._conninfo, self.collection = parse_uri(uri)
        self.table = f"rt_{self.collection}"
        self.docs_table = f"rt_{self.collection}_docs"
        self._timeout = max(1, int(connect_timeout_s))
        self._pool: queue.SimpleQueue = queue.SimpleQueue()
        self._exists = False  # the tables are there (checked until true; write_config / drop set it)
        self._release(self._connect())  # fail now (one line) when the server is unreachable or refuses us

    # ---- connections ---------------------------------------------------------------------------------------
    def _connect(self) -> Any:
        from pgvector.psycopg import register_vector

        psycopg = self._psycopg
        try:
            conn = psycopg.connect(self._conninfo, connect_timeout=self._timeout, autocommit=True, application_name="ragtune")
        except psycopg.Error as err:
            raise BackendError(f"cannot connect to {self.uri}: {_one_line(err)}") from err
        try:
            register_vector(conn)
        except psycopg.Error:  # the vector type is unknown in this database: create the extension if we may
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                register_vector(conn)
            except psycopg.Error as err:
                conn.close()
                raise BackendError(f"{self.uri}: pgvector is not available in this database; as a superuser run "
                                   f"CREATE EXTENSION vector ({_one_line(err)})") from err
        return conn

    def _release(self, conn: Any) -> None:
        if conn.closed or conn.info.transaction_status != self._psycopg.pq.TransactionStatus.IDLE:
            conn.close()
        else:
            self._pool.put(conn)

    @contextmanager
    def _cursor(self, transaction: bool = False) -> Iterator[Any]:
        """A cursor on a pooled connection, in one transaction if asked; driver errors become one BackendError line."""
        psycopg = self._psycopg
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            if transaction:
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
            else:
                with conn.cursor() as cur:
                    yield cur
        except psycopg.OperationalError as err:  # dropped connection: the server rolled the transaction back
            conn.close()
            raise BackendError(f"{self.uri}: connection failed: {_one_line(err)}") from err
        except psycopg.Error as err:
            conn.close()
            raise BackendError(f"{self.uri}: {_one_line(err)}") from err
        except BaseException:
            self._release(conn)  # a rolled-back transaction leaves it idle (reused); anything else closes it
            raise
        self._release(conn)

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return

    def _ready(self) -> bool:
        """Whether the collection's tables exist: reads of a collection not created yet are empty, not errors."""
        if not self._exists:
            with self._cursor() as cur:
                cur.execute("SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL", (self.table, self.docs_table))
                self._exists = bool(cur.fetchone()[0])
        return self._exists

    # ---- config ----------------------------------------------------------------------------------------------
    def read_config(self) -> StoreConfig | None:
        with self._cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (COLLECTIONS,))
            if not cur.fetchone()[0]:
                return None
            cur.execute(f"SELECT embedder, dim, config FROM {COLLECTIONS} WHERE name = %s", (self.collection,))
            row = cur.fetchone()
        return None if row is None else StoreConfig(row[0], int(row[1]), dict(row[2] or {}))

    def write_config(self, config: StoreConfig) -> None:
        """Create the collection's tables and indexes for config.dim if missing; ConfigError on another embedder."""
        t = self.table
        with self._cursor(transaction=True) as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ragtune:schema:{t}",))
            cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {COLLECTIONS} (name text PRIMARY KEY, embedder text NOT NULL, "
                        "dim integer NOT NULL, config jsonb NOT NULL DEFAULT '{}', created_at timestamptz DEFAULT now())")
            cur.execute(f"SELECT embedder, dim FROM {COLLECTIONS} WHERE name = %s", (self.collection,))
            row = cur.fetchone()
            if row is not None:
                if (row[0], int(row[1])) != (config.embedder_id, config.dim):
                    raise ConfigError(f"{self.uri} was built with embedder {row[0]!r} (dim {row[1]}), not "
                                      f"{config.embedder_id!r} (dim {config.dim}); use that embedder or another collection")
                cur.execute(f"UPDATE {COLLECTIONS} SET config = %s WHERE name = %s",
                            (json.dumps(config.index_config, default=str), self.collection))
                return
            cur.execute(f"""CREATE TABLE IF NOT EXISTS {t} (
                id text PRIMARY KEY, doc_id text NOT NULL, text text NOT NULL, title text NOT NULL DEFAULT '',
                source text NOT NULL DEFAULT '', metadata jsonb NOT NULL DEFAULT '{{}}',
                groups text[] NOT NULL DEFAULT '{{}}', content_hash text NOT NULL, position integer NOT NULL,
                embedding vector({int(config.dim)}) NOT NULL,
                tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', title || ' ' || text)) STORED)""")
            cur.execute(f"CREATE INDEX IF NOT EXISTS {t}_doc ON {t} (doc_id, position)")
            cur.execute(f"CREATE INDEX IF NOT EXISTS {t}_hnsw ON {t} USING hnsw (embedding vector_cosine_ops)")
            cur.execute(f"CREATE INDEX IF NOT EXISTS {t}_tsv ON {t} USING gin (tsv)")
            cur.execute(f"CREATE INDEX IF NOT EXISTS {t}_groups ON {t} USING gin (groups)")
            cur.execute(f"CREATE INDEX IF NOT EXISTS {t}_meta ON {t} USING gin (metadata jsonb_path_ops)")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {self.docs_table} (doc_id text PRIMARY KEY, hash text NOT NULL, "
                        "title text NOT NULL DEFAULT '', source text NOT NULL DEFAULT '', n_chunks integer NOT NULL, "
                        "metadata jsonb NOT NULL DEFAULT '{}')")
            cur.execute(f"INSERT INTO {COLLECTIONS} (name, embedder, dim, config) VALUES (%s, %s, %s, %s)",
                        (self.collection, config.embedder_id, config.dim, json.dumps(config.index_config, default=str)))
        self._exists = True

    def drop(self) -> None:
        with self._cursor(transaction=True) as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ragtune:schema:{self.table}",))
            cur.execute(f"DROP TABLE IF EXISTS {self.table}, {self.docs_table}")
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (COLLECTIONS,))
            if cur.fetchone()[0]:
                cur.execute(f"DELETE FROM {COLLECTIONS} WHERE name = %s", (self.collection,))
        self._exists = False

    # ---- writing ---------------------------------------------------------------------------------------------
    def replace_documents(self, docs: Sequence[StoredDocument], chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Each of docs becomes live with exactly its chunks, all in ONE transaction (old or new state, never half)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(chunks):
            raise InputError(f"expected {len(chunks)} vectors (one per chunk), got shape {vectors.shape}")
        by_id = {d.doc_id: d for d in docs}
        rows: dict[str, list[tuple]] = {doc_id: [] for doc_id in by_id}
        for chunk, vector in zip(chunks, vectors):
            if chunk.doc_id not in by_id:
                raise InputError(f"chunk {chunk.chunk_id!r} belongs to no document being written")
            rows[chunk.doc_id].append((chunk.chunk_id, chunk.doc_id, chunk.text.replace("\x00", ""), chunk.title,
                                       chunk.source, _json(chunk.metadata), chunk_groups(chunk), by_id[chunk.doc_id].hash,
                                       chunk.position, vector))
        with self._cursor(transaction=True) as cur:
            for doc_id in sorted(by_id):  # one lock order for every writer: no deadlocks
                doc = by_id[doc_id]
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.table}:{doc_id}",))
                cur.execute(f"DELETE FROM {self.table} WHERE doc_id = %s", (doc_id,))
                if rows[doc_id]:
                    cur.executemany(
                        f"INSERT INTO {self.table} (id, doc_id, text, title, source, metadata, groups, content_hash, "
                        "position, embedding) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE "
                        "SET doc_id = EXCLUDED.doc_id, text = EXCLUDED.text, title = EXCLUDED.title, source = EXCLUDED.source, "
                        "metadata = EXCLUDED.metadata, groups = EXCLUDED.groups, content_hash = EXCLUDED.content_hash, "
                        "position = EXCLUDED.position, embedding = EXCLUDED.embedding", rows[doc_id])
                cur.execute(
                    f"INSERT INTO {self.docs_table} (doc_id, hash, title, source, n_chunks, metadata) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (doc_id) DO UPDATE SET hash = EXCLUDED.hash, "
                    "title = EXCLUDED.title, source = EXCLUDED.source, n_chunks = EXCLUDED.n_chunks, metadata = EXCLUDED.metadata",
                    (doc_id, doc.hash, doc.title, doc.source, len(rows[doc_id]), _json(doc.metadata)))

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        wanted = sorted(set(doc_ids))
        if not wanted or not self._ready():
            return 0
        with self._cursor(transaction=True) as cur:
            for doc_id in wanted:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.table}:{doc_id}",))
            cur.execute(f"DELETE FROM {self.table} WHERE doc_id = ANY(%s)", (wanted,))
            removed = cur.rowcount
            cur.execute(f"DELETE FROM {self.docs_table} WHERE doc_id = ANY(%s)", (wanted,))
        return removed

    # ---- reading ---------------------------------------------------------------------------------------------
    def list_documents(self) -> list[StoredDocument]:
        if not self._ready():
            return []
        with self._cursor() as cur:
            cur.execute(f"SELECT doc_id, hash, title, source, n_chunks, metadata FROM {self.docs_table} ORDER BY doc_id")
            return [StoredDocument(r[0], r[1], r[2], r[3], int(r[4]), dict(r[5] or {})) for r in cur.fetchall()]

    def count(self) -> int:
        if not self._ready():
            return 0
        with self._cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {self.table}")
            return int(cur.fetchone()[0])

    def get_chunks(self, chunk_ids: Sequence[str]) -> list[Chunk | None]:
        if not self._ready():
            return [None] * len(chunk_ids)
        with self._cursor() as cur:
            cur.execute(f"SELECT {SELECT_CHUNK} FROM {self.table} c WHERE c.id = ANY(%s)", (list(chunk_ids),))
            found = {row[0]: _chunk(row) for row in cur.fetchall()}
        return [found.get(c) for c in chunk_ids]

    def iter_chunks(self, batch_size: int = 1000) -> Iterator[list[Chunk]]:
        """Every live chunk in batches ordered by (doc id, position); keyset pages, so no long-held cursor."""
        after: tuple[str, int] = ("", -1)
        while self._ready():
            with self._cursor() as cur:
                cur.execute(f"SELECT {SELECT_CHUNK} FROM {self.table} c WHERE (c.doc_id, c.position) > (%s, %s) "
                            "ORDER BY c.doc_id, c.position LIMIT %s", (*after, batch_size))
                batch = [_chunk(row) for row in cur.fetchall()]
            if not batch:
                return
            yield batch
            after = (batch[-1].doc_id, batch[-1].position)

    # ---- searching -------------------------------------------------------------------------------------------
    def dense_search(self, vectors: np.ndarray, k: int, filters: StoreFilters | None = None) -> list[list[Hit]]:
        """Up to k hits per query vector by cosine (= inner product on normalised vectors), best first."""
        where, params = sql_filters(filters)
        sql = (f"SELECT {SELECT_CHUNK}, 1 - (c.embedding <=> %(v)s) FROM {self.table} c WHERE {where} "
               "ORDER BY c.embedding <=> %(v)s, c.id LIMIT %(k)s")  # id breaks ties: an incremental sort on the HNSW scan
        return self._search(sql, [{**params, "v": v, "k": k} for v in _as_matrix(vectors)], k)

    def keyword_search(self, queries: Sequence[str], k: int, filters: StoreFilters | None = None) -> list[list[Hit]]:
        """Up to k hits per query by ts_rank_cd over an OR of its stemmed words (Postgres full text, not BM25)."""
        where, params = sql_filters(filters)
        sql = (f"SELECT {SELECT_CHUNK}, ts_rank_cd(c.tsv, tq.q, {TS_NORM}) AS score FROM {self.table} c, {TSQUERY} "
               f"WHERE c.tsv @@ tq.q AND {where} ORDER BY score DESC, c.id LIMIT %(k)s")
        return self._search(sql, [{**params, "q": q, "k": k} for q in queries], k)

    def hybrid_search(
        self, queries: Sequence[str], vectors: np.ndarray, k: int, filters: StoreFilters | None = None,
        candidates: int = 100, rrf_k: int = 60, weights: tuple[float, float] = (1.0, 1.0),
    ) -> list[list[Hit]]:
        """Dense and keyword top-`candidates` fused by weighted RRF, in ONE SQL statement per query (hybrid_sql)."""
        vectors = _as_matrix(vectors)
        if len(queries) != len(vectors):
            raise InputError(f"{len(queries)} queries but {len(vectors)} vectors")
        where, params = sql_filters(filters)
        depth = max(int(candidates), k)
        batch = [{**params, "q": q, "v": v, "depth": depth, "k": k, "rrf_k": int(rrf_k),
                  "dw": float(weights[0]), "kw": float(weights[1])} for q, v in zip(queries, vectors)]
        return self._search(hybrid_sql(self.table, where), batch, depth)

    def _search(self, sql: str, batch: list[dict[str, Any]], depth: int) -> list[list[Hit]]:
        if not self._ready():
            return [[] for _ in batch]
        out = []
        with self._cursor() as cur:
            # A filtered HNSW scan keeps going until enough rows pass the WHERE clause (pgvector >= 0.8), and
            # its candidate list is 4x as deep as what we ask for: on SciFact (11.9k chunks, depth 200) 2x lost
            # 0.010 nDCG@10 against exact search, 4x matched it (bench/bench_store_postgres.py).
            cur.execute("SELECT set_config('hnsw.ef_search', %s, false), set_config('hnsw.iterative_scan', 'strict_order', false)",
                        (str(ef_search(depth)),))
            for params in batch:
                cur.execute(sql, params)
                out.append([Hit(chunk=_chunk(row), score=float(row[-1]), rank=i) for i, row in enumerate(cur.fetchall())])
        return out


def ef_search(depth: int) -> int:
    """HNSW candidate list size for a search `depth` rows deep (pgvector caps it at 1000)."""
    return min(1000, max(100, 4 * depth))


def hybrid_sql(table: str, where: str) -> str:
    """The one hybrid statement: dense top-N and keyword top-N as CTEs, fused by weighted RRF, top k.

    A weight of 0 switches its ranking off (no candidates either), as ragtune.retrieve.rrf_fuse does; ties
    break by the best rank either list gave, then by chunk id (ragtune.store.base.rrf_merge's order)."""
    return f"""
WITH dense AS (
    SELECT id, row_number() OVER (ORDER BY dist, id) AS r FROM (
        SELECT c.id, c.embedding <=> %(v)s AS dist FROM {table} c WHERE {where} AND %(dw)s > 0
        ORDER BY c.embedding <=> %(v)s, c.id LIMIT %(depth)s) d),
kw AS (
    SELECT id, row_number() OVER (ORDER BY score DESC, id) AS r FROM (
        SELECT c.id, ts_rank_cd(c.tsv, tq.q, {TS_NORM}) AS score FROM {table} c, {TSQUERY}
        WHERE c.tsv @@ tq.q AND {where} AND %(kw)s > 0 ORDER BY score DESC, c.id LIMIT %(depth)s) s),
fused AS (
    SELECT id, sum(w / (%(rrf_k)s + r)) AS score, min(r) AS best FROM (
        SELECT id, r, %(dw)s::float8 AS w FROM dense UNION ALL SELECT id, r, %(kw)s::float8 FROM kw) u
    GROUP BY id)
SELECT {SELECT_CHUNK}, f.score FROM fused f JOIN {table} c USING (id) ORDER BY f.score DESC, f.best, f.id LIMIT %(k)s"""


def sql_filters(filters: StoreFilters | None) -> tuple[str, dict[str, Any]]:
    """Filters -> (SQL boolean over chunk row `c`, named params): the folder index's semantics.

    {"field": value | [values]}, fields AND: "doc_id" / "source" are columns; ACCESS_FIELD means public (no
    groups) or sharing one of the caller's groups (GIN on `groups`); any other field matches when
    metadata[field] as text is one of the values or, for a list-valued field, one of its elements is."""
    if not filters:
        return "TRUE", {}
    if not hasattr(filters, "items"):
        raise InputError(f"filters must be a mapping of field -> value(s), got {filters!r}")
    clauses, params = [], {}
    for i, (field, wanted) in enumerate(filters.items()):
        values = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
        params[f"f{i}"] = [value_key(v) for v in values]
        if field == ACCESS_FIELD:
            clauses.append(f"(c.groups = '{{}}' OR c.groups && %(f{i})s::text[])")
        elif field in SPECIAL_FIELDS:
            clauses.append(f"c.{field} = ANY(%(f{i})s)")
        else:
            params[f"n{i}"] = str(field)
            clauses.append(
                f"(c.metadata ->> %(n{i})s = ANY(%(f{i})s) OR (jsonb_typeof(c.metadata -> %(n{i})s) = 'array' AND EXISTS ("
                f"SELECT 1 FROM jsonb_array_elements(c.metadata -> %(n{i})s) e WHERE e #>> '{{}}' = ANY(%(f{i})s))))")
    return " AND ".join(clauses), params


def _as_matrix(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors.reshape(1, -1) if vectors.ndim == 1 else vectors


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), ensure_ascii=False, default=str).replace("\\u0000", "")


def _chunk(row: Sequence[Any]) -> Chunk:
    return Chunk(chunk_id=row[0], doc_id=row[1], text=row[2], title=row[3], position=row[4], source=row[5],
                 metadata=dict(row[6] or {}))
