"""PostgreSQL + pgvector backend: `postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE?collection=NAME`.

One table per collection (`rt_<name>`: chunk id, document id, text, title, source, metadata jsonb, access groups
text[], content hash, position, `embedding vector(dim)`, a generated `tsv tsvector`), with an HNSW index on the
vector (cosine) and GIN indexes on the tsvector, the groups and the metadata. The index config (embedder id,
dimension, chunking) lives in `ragtune_collections`; opening a collection with another embedder or dimension is a
ConfigError.

Full text is Postgres' own: `ts_rank_cd` (cover density) over an OR of the query's stemmed words — NOT BM25; on
SciFact it costs nDCG@10 against bm25s (figures: bench/bench_store.py). Hybrid is one SQL statement: dense and
keyword top-N in CTEs, fused by weighted RRF in SQL. Filters (metadata key=value, doc ids, access groups) are
WHERE clauses, so they apply before the LIMIT, never after.

Every write (replace of a document = delete + insert) is one transaction: a kill leaves the old or the new
state. Two writers are serialised per document by a transaction-level advisory lock, so the same document
ingested twice at once leaves one copy. The password comes from the URI or PGPASSWORD (libpq's own lookup).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import numpy as np

from ragtune.errors import BackendError, ConfigError, InputError, MissingExtraError
from ragtune.types import Chunk, Hit

SCHEME = "postgresql"
COLLECTIONS = "ragtune_collections"
GROUPS_FIELD = "groups"  # the metadata field holding access groups (ragtune.serve.auth.GROUPS_FIELD)
NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
TS_CONFIG = "english"
# An OR of the query's stemmed words: plainto_tsquery ANDs them (and joins hyphenated parts with <->), which
# recalls almost nothing for a question; rewriting the operators keeps its tokenising, stemming and stop words.
TSQUERY = "(SELECT replace(replace(plainto_tsquery('english', %(q)s)::text, ' & ', ' | '), ' <-> ', ' | ')::tsquery AS q) tq"
# ts_rank_cd normalisation 1: divide by 1 + log(document length) (long chunks otherwise win by size).
TS_NORM = 1


@dataclass(frozen=True)
class PostgresTarget:
    """A parsed URI: the libpq connection string (no collection) and the collection name."""

    conninfo: str
    collection: str
    display: str  # the URI without the password, for messages

    @property
    def table(self) -> str:
        return f"rt_{self.collection}"


def parse_uri(uri: str) -> PostgresTarget:
    """`postgresql://USER@HOST:PORT/DATABASE?collection=NAME` -> PostgresTarget (collection defaults to 'ragtune')."""
    parts = urlsplit(uri)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise ConfigError(f"not a PostgreSQL URI: {uri!r} (expected postgresql://USER@HOST:PORT/DATABASE?collection=NAME)")
    query = parse_qs(parts.query, keep_blank_values=True)
    names = query.pop("collection", ["ragtune"])
    collection = names[-1].strip().lower()
    if not NAME.match(collection):
        raise ConfigError(f"bad collection name {names[-1]!r}: use 1-41 of lowercase letters, digits and _ (not first)")
    rest = "&".join(f"{k}={v}" for k, vs in query.items() for v in vs)
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, rest, ""))
    netloc = parts.netloc.rsplit("@", 1)
    shown = f"{netloc[0].split(':', 1)[0]}@{netloc[1]}" if len(netloc) == 2 else parts.netloc
    display = urlunsplit(("postgresql", shown, parts.path, f"collection={collection}", ""))
    return PostgresTarget(conninfo=conninfo, collection=collection, display=display)


def _psycopg() -> Any:
    try:
        import psycopg
        from pgvector.psycopg import register_vector  # noqa: F401  (checked here so the error names the extra)
    except ImportError as err:
        raise MissingExtraError("psycopg", "postgres") from err
    return psycopg


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300] or type(err).__name__


class PostgresStore:
    """A collection in a PostgreSQL database with pgvector. Thread-safe for reads via one connection per call site."""

    def __init__(self, uri: str, *, embedder_id: str, dim: int, config: Mapping[str, Any] | None = None,
                 create: bool = True, connect_timeout_s: float = 10.0):
        self.target = parse_uri(uri)
        self.embedder_id = embedder_id
        self.dim = int(dim)
        self.config = dict(config or {})
        self._psycopg = _psycopg()
        self._timeout = connect_timeout_s
        self._conn: Any = None
        self._ensure_schema(create)

    # ---- connection ----------------------------------------------------------------------------------------
    def _connect(self) -> Any:
        from pgvector.psycopg import register_vector

        try:
            conn = self._psycopg.connect(self.target.conninfo, connect_timeout=max(1, int(self._timeout)),
                                         autocommit=True, application_name="ragtune")
        except self._psycopg.Error as err:
            raise BackendError(f"cannot connect to {self.target.display}: {_one_line(err)}") from err
        try:
            register_vector(conn)
        except self._psycopg.ProgrammingError as err:  # the vector type is unknown: extension missing
            conn.close()
            raise BackendError(f"{self.target.display}: pgvector is not installed in this database "
                               f"(CREATE EXTENSION vector): {_one_line(err)}") from err
        return conn

    @contextmanager
    def _cursor(self, transaction: bool = False) -> Iterator[Any]:
        """A cursor on the (re)connected session; any driver error becomes one BackendError line."""
        psycopg = self._psycopg
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        conn = self._conn
        try:
            if transaction:
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
            else:
                with conn.cursor() as cur:
                    yield cur
        except psycopg.OperationalError as err:  # dropped connection: the transaction was rolled back by the server
            self.close()
            raise BackendError(f"{self.target.display}: connection failed: {_one_line(err)}") from err
        except psycopg.Error as err:
            raise BackendError(f"{self.target.display}: {_one_line(err)}") from err

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    # ---- schema and config ---------------------------------------------------------------------------------
    def _ensure_schema(self, create: bool) -> None:
        t = self.target.table
        with self._cursor(transaction=True) as cur:
            # Serialise concurrent first-time creation of the same collection.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ragtune:schema:{t}",))
            cur.execute(f"CREATE TABLE IF NOT EXISTS {COLLECTIONS} (name text PRIMARY KEY, embedder text NOT NULL, "
                        "dim integer NOT NULL, config jsonb NOT NULL DEFAULT '{}', created_at timestamptz DEFAULT now())")
            cur.execute(f"SELECT embedder, dim, config FROM {COLLECTIONS} WHERE name = %s", (self.target.collection,))
            row = cur.fetchone()
            if row is not None:
                embedder, dim, stored = row
                if embedder != self.embedder_id or int(dim) != self.dim:
                    raise ConfigError(
                        f"{self.target.display} was built with embedder {embedder!r} (dim {dim}), not {self.embedder_id!r} "
                        f"(dim {self.dim}); use that embedder or another collection")
                self.config = {**stored, **{k: v for k, v in self.config.items() if k not in stored}}
                return
            if not create:
                raise ConfigError(f"no collection {self.target.collection!r} in {self.target.display}; ingest into it first")
            cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
            cur.execute(f"""CREATE TABLE IF NOT EXISTS {t} (
                id text PRIMARY KEY, doc_id text NOT NULL, text text NOT NULL, title text NOT NULL DEFAULT '',
                source text NOT NULL DEFAULT '', metadata jsonb NOT NULL DEFAULT '{{}}', groups text[] NOT NULL DEFAULT '{{}}',
                content_hash text NOT NULL, position integer NOT NULL, embedding vector({self.dim}) NOT NULL,
                tsv tsvector GENERATED ALWAYS AS (to_tsvector('{TS_CONFIG}', title || ' ' || text)) STORED)""")
            cur.execute(f"CREATE INDEX IF NOT EXISTS {t}_doc ON {t} (doc_id)")
            cur.execute(f"CREATE INDEX IF NOT EXISTS {t}_hnsw ON {t} USING hnsw (embedding vector_cosine_ops)")
            cur.execute(f"CREATE INDEX IF NOT EXISTS {t}_tsv ON {t} USING gin (tsv)")
            cur.execute(f"CREATE INDEX IF NOT EXISTS {t}_groups ON {t} USING gin (groups)")
            cur.execute(f"CREATE INDEX IF NOT EXISTS {t}_meta ON {t} USING gin (metadata jsonb_path_ops)")
            cur.execute(f"INSERT INTO {COLLECTIONS} (name, embedder, dim, config) VALUES (%s, %s, %s, %s)",
                        (self.target.collection, self.embedder_id, self.dim, json.dumps(self.config, default=str)))

    def drop(self) -> None:
        """Remove the collection (table and config row)."""
        with self._cursor(transaction=True) as cur:
            cur.execute(f"DROP TABLE IF EXISTS {self.target.table}")
            cur.execute(f"DELETE FROM {COLLECTIONS} WHERE name = %s", (self.target.collection,))

    # ---- writes --------------------------------------------------------------------------------------------
    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray, content_hashes: Mapping[str, str]) -> tuple[int, int]:
        """Replace every document named by `chunks` with these chunks, in ONE transaction.

        `content_hashes` maps each document id to its content hash. A document whose stored hash equals the new
        one is left untouched (dedupe). Returns (chunks written, chunks removed).
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(chunks) or (len(chunks) and vectors.shape[1] != self.dim):
            raise InputError(f"expected ({len(chunks)}, {self.dim}) vectors, got {vectors.shape}")
        by_doc: dict[str, list[int]] = {}
        for row, chunk in enumerate(chunks):
            by_doc.setdefault(chunk.doc_id, []).append(row)
        missing = sorted(set(by_doc) - set(content_hashes))
        if missing:
            raise InputError(f"no content hash for document {missing[0]!r}")
        t = self.target.table
        written = removed = 0
        with self._cursor(transaction=True) as cur:
            for doc_id in sorted(content_hashes):  # one lock order for every writer: no deadlocks
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{t}:{doc_id}",))
                cur.execute(f"SELECT DISTINCT content_hash FROM {t} WHERE doc_id = %s", (doc_id,))
                stored = [r[0] for r in cur.fetchall()]
                if stored == [content_hashes[doc_id]]:
                    continue
                cur.execute(f"DELETE FROM {t} WHERE doc_id = %s", (doc_id,))
                removed += cur.rowcount
                rows = [self._row(chunks[i], vectors[i], content_hashes[doc_id]) for i in by_doc.get(doc_id, [])]
                if rows:
                    cur.executemany(
                        f"INSERT INTO {t} (id, doc_id, text, title, source, metadata, groups, content_hash, position, embedding) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
                    written += len(rows)
        return written, removed

    @staticmethod
    def _row(chunk: Chunk, vector: np.ndarray, content_hash: str) -> tuple:
        groups = chunk.metadata.get(GROUPS_FIELD) or []
        groups = [str(g) for g in (groups if isinstance(groups, (list, tuple, set, frozenset)) else [groups])]
        return (chunk.chunk_id, chunk.doc_id, chunk.text.replace("\x00", ""), chunk.title, chunk.source,
                json.dumps(chunk.metadata, ensure_ascii=False, default=str), sorted(set(groups)), content_hash,
                chunk.position, vector)

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Delete these documents' chunks in one transaction; returns the number of chunks removed."""
        if not doc_ids:
            return 0
        with self._cursor(transaction=True) as cur:
            for doc_id in sorted(set(doc_ids)):
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.target.table}:{doc_id}",))
            cur.execute(f"DELETE FROM {self.target.table} WHERE doc_id = ANY(%s)", (list(doc_ids),))
            return cur.rowcount

    # ---- reads ---------------------------------------------------------------------------------------------
    def count(self) -> int:
        with self._cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {self.target.table}")
            return int(cur.fetchone()[0])

    def documents(self) -> dict[str, str]:
        """document id -> content hash, for every document with at least one chunk."""
        with self._cursor() as cur:
            cur.execute(f"SELECT doc_id, min(content_hash) FROM {self.target.table} GROUP BY doc_id ORDER BY doc_id")
            return {d: h for d, h in cur.fetchall()}

    def get_chunks(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        """The chunks with these ids, in the order asked (unknown ids are skipped)."""
        with self._cursor() as cur:
            cur.execute(f"SELECT {_CHUNK_COLS} FROM {self.target.table} WHERE id = ANY(%s)", (list(chunk_ids),))
            found = {row[0]: _chunk(row) for row in cur.fetchall()}
        return [found[c] for c in chunk_ids if c in found]

    def chunks(self, doc_ids: Sequence[str] | None = None) -> list[Chunk]:
        """Every chunk (or those of `doc_ids`) ordered by document then position."""
        where, params = ("WHERE doc_id = ANY(%(ids)s)", {"ids": list(doc_ids)}) if doc_ids is not None else ("", {})
        with self._cursor() as cur:
            cur.execute(f"SELECT {_CHUNK_COLS} FROM {self.target.table} {where} ORDER BY doc_id, position", params)
            return [_chunk(row) for row in cur.fetchall()]

    def _search_settings(self, cur: Any, depth: int) -> None:
        # Filtered HNSW scans keep going until `depth` rows pass the WHERE clause (pgvector >= 0.8), and the
        # candidate list is at least as deep as what we ask for.
        cur.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(min(1000, max(100, 2 * depth))),))
        cur.execute("SELECT set_config('hnsw.iterative_scan', 'strict_order', false)")

    def dense_search(self, vectors: np.ndarray, k: int, filters: Mapping[str, Any] | None = None) -> list[list[Hit]]:
        """Top-k chunks by cosine similarity per query vector (score = 1 - cosine distance)."""
        where, params = _where(filters)
        sql = (f"SELECT {_CHUNK_COLS}, 1 - (embedding <=> %(v)s) AS score FROM {self.target.table} WHERE {where} "
               "ORDER BY embedding <=> %(v)s LIMIT %(k)s")
        return self._run(sql, [{**params, "v": np.asarray(v, dtype=np.float32), "k": k} for v in vectors], k)

    def keyword_search(self, queries: Sequence[str], k: int, filters: Mapping[str, Any] | None = None) -> list[list[Hit]]:
        """Top-k chunks by ts_rank_cd of an OR of the query's stemmed words (Postgres full text, not BM25)."""
        where, params = _where(filters)
        sql = (f"SELECT {_CHUNK_COLS}, ts_rank_cd(tsv, q, {TS_NORM}) AS score FROM {self.target.table}, {TSQUERY} "
               f"WHERE tsv @@ q AND {where} ORDER BY score DESC, id LIMIT %(k)s")
        return self._run(sql, [{**params, "q": q, "k": k} for q in queries], k)

    def hybrid_search(self, queries: Sequence[str], vectors: np.ndarray, k: int, filters: Mapping[str, Any] | None = None,
                      *, candidates: int = 100, rrf_k: int = 60, dense_weight: float = 1.0,
                      keyword_weight: float = 1.0) -> list[list[Hit]]:
        """Dense and keyword top-`candidates` fused by weighted RRF, in ONE SQL statement per query."""
        if len(queries) != len(vectors):
            raise InputError(f"{len(queries)} queries but {len(vectors)} vectors")
        where, params = _where(filters)
        depth = max(candidates, k)
        sql = hybrid_sql(self.target.table, where)
        batch = [{**params, "q": q, "v": np.asarray(v, dtype=np.float32), "depth": depth, "k": k, "rrf_k": rrf_k,
                  "dw": float(dense_weight), "kw": float(keyword_weight)} for q, v in zip(queries, vectors)]
        return self._run(sql, batch, depth)

    def _run(self, sql: str, batch: list[dict[str, Any]], depth: int) -> list[list[Hit]]:
        out = []
        with self._cursor() as cur:
            self._search_settings(cur, depth)
            for params in batch:
                cur.execute(sql, params)
                out.append([Hit(chunk=_chunk(row), score=float(row[-1]), rank=i) for i, row in enumerate(cur.fetchall())])
        return out


_CHUNK_COLS = "id, doc_id, text, title, position, source, metadata"


def _chunk(row: Sequence[Any]) -> Chunk:
    return Chunk(chunk_id=row[0], doc_id=row[1], text=row[2], title=row[3], position=row[4], source=row[5],
                 metadata=dict(row[6] or {}))


def hybrid_sql(table: str, where: str) -> str:
    """The single hybrid statement: dense top-N and keyword top-N as CTEs, fused by weighted RRF.

    A weight of 0 switches that ranking off (no candidates either), as ragtune.retrieve.hybrid.rrf_fuse does;
    ties break by the best rank either list gave, then by chunk id.
    """
    return f"""
WITH dense AS (
    SELECT id, row_number() OVER (ORDER BY dist, id) AS r FROM (
        SELECT id, embedding <=> %(v)s AS dist FROM {table} WHERE {where} AND %(dw)s > 0
        ORDER BY embedding <=> %(v)s LIMIT %(depth)s) d),
kw AS (
    SELECT id, row_number() OVER (ORDER BY score DESC, id) AS r FROM (
        SELECT id, ts_rank_cd(tsv, q, {TS_NORM}) AS score FROM {table}, {TSQUERY}
        WHERE tsv @@ q AND {where} AND %(kw)s > 0 ORDER BY score DESC, id LIMIT %(depth)s) s),
fused AS (
    SELECT id, sum(w / (%(rrf_k)s + r)) AS score, min(r) AS best FROM (
        SELECT id, r, %(dw)s::float8 AS w FROM dense UNION ALL SELECT id, r, %(kw)s::float8 FROM kw) u
    GROUP BY id)
SELECT {", ".join("c." + c.strip() for c in _CHUNK_COLS.split(","))}, f.score
FROM fused f JOIN {table} c USING (id) ORDER BY f.score DESC, f.best, f.id LIMIT %(k)s"""


def _where(filters: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """Filters -> (SQL boolean expression, named params), the semantics of ragtune.index.metadata.

    {"field": value | [values]}: "doc_id" and "source" are columns; "groups" uses the text[] column (overlap,
    GIN); any other field matches when metadata[field] (as text) is one of the values, or, for a list-valued
    field, when one of its elements is. All fields must match.
    """
    if not filters:
        return "TRUE", {}
    if not hasattr(filters, "items"):
        raise InputError(f"filters must be a mapping of field -> value(s), got {filters!r}")
    from ragtune.index.metadata import value_key

    clauses, params = [], {}
    for i, (field, wanted) in enumerate(filters.items()):
        values = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
        params[f"f{i}"] = [value_key(v) for v in values]
        if field in ("doc_id", "source"):
            clauses.append(f"{field} = ANY(%(f{i})s)")
        elif field == GROUPS_FIELD:
            clauses.append(f"groups && %(f{i})s::text[]")
        else:
            params[f"n{i}"] = str(field)
            clauses.append(
                f"(metadata ->> %(n{i})s = ANY(%(f{i})s) OR (jsonb_typeof(metadata -> %(n{i})s) = 'array' AND EXISTS ("
                f"SELECT 1 FROM jsonb_array_elements(metadata -> %(n{i})s) e WHERE e #>> '{{}}' = ANY(%(f{i})s))))")
    return " AND ".join(clauses), params
