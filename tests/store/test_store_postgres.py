"""PostgreSQL/pgvector specifics beyond the conformance suite: one transaction per write (a killed or cut-off
writer leaves the old state), the single-statement hybrid equals client-side RRF, the config check, and
connection failures as one line with exit status 5. Needs RAGTUNE_TEST_POSTGRES (scripts/services.sh up)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pytest

from ragtune.errors import BackendError, ConfigError, MissingExtraError
from ragtune.index import HashEmbedder
from ragtune.store import ACCESS_FIELD, StoreConfig, StoredDocument, open_store, with_collection
from ragtune.store.base import rrf_merge
from ragtune.store.postgres import hybrid_sql, parse_uri, sql_filters
from ragtune.types import Chunk

SRC = Path(__file__).resolve().parents[2] / "src"
ENV = "RAGTUNE_TEST_POSTGRES"


def backend_base_uri(_backend: str = "postgres") -> str:
    """The server's base URI from RAGTUNE_TEST_POSTGRES (scripts/services.sh up prints it), else skip."""
    if not os.environ.get(ENV, "").strip():
        pytest.skip(f"postgres: set {ENV} to run against a real server")
    pytest.importorskip("psycopg")
    return os.environ[ENV].strip()
CONFIG = StoreConfig("hash:16", 16, {"chunk": {"chunk_tokens": 32}})


# ---- no server needed ------------------------------------------------------------------------------------
def test_parse_uri_collection_and_passthrough() -> None:
    conninfo, name = parse_uri("postgresql://me:pw@db.example:5433/rag?collection=docs_v2&sslmode=require")
    assert (conninfo, name) == ("postgresql://me:pw@db.example:5433/rag?sslmode=require", "docs_v2")
    assert parse_uri("postgres://me@h/rag?collection=ragtune")[1] == "ragtune"
    with pytest.raises(ConfigError, match=r"names no collection: add \?collection=NAME"):
        parse_uri("postgresql://me:pw@h/rag?sslmode=require")  # no silent default table
    with pytest.raises(ConfigError, match="bad collection name 'Robert;drop'"):
        parse_uri("postgresql://me@h/rag?collection=Robert;drop")


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'ragtune\[postgres\]'"):
        open_store("postgresql://me@127.0.0.1:1/rag?collection=x")


def test_filters_compile_to_where_clauses() -> None:
    where, params = sql_filters({"doc_id": ["a", "b"], ACCESS_FIELD: ["hr"], "year": 2020})
    assert "c.doc_id = ANY(%(f0)s)" in where and "c.groups && %(f1)s::text[]" in where
    assert params == {"f0": ["a", "b"], "f1": ["hr"], "f2": ["2020"], "n2": "year"}
    assert sql_filters(None) == ("TRUE", {})


def test_hybrid_is_one_statement() -> None:
    sql = hybrid_sql("rt_x", "TRUE").strip()
    assert ";" not in sql and sql.startswith("WITH dense AS") and "ts_rank_cd" in sql and "<=>" in sql


def test_unreachable_server_is_one_line_exit_5() -> None:
    with pytest.raises(BackendError) as err:
        open_store("postgresql://me:s3cret@127.0.0.1:1/rag?collection=x")
    assert err.value.exit_code == 5
    assert "\n" not in str(err.value) and "s3cret" not in str(err.value) and "127.0.0.1" in str(err.value)


# ---- against a server ------------------------------------------------------------------------------------
@pytest.fixture
def pg_uri(tmp_path: Path) -> Iterator[str]:
    uri = with_collection(backend_base_uri("postgres"), f"t_{uuid.uuid4().hex[:12]}")
    try:
        yield uri
    finally:
        store = open_store(uri)
        store.drop()
        store.close()


def _doc(doc_id: str, version: str, n: int, groups: list[str] | None = None) -> tuple[StoredDocument, list[Chunk]]:
    meta = {"groups": groups} if groups else {}
    doc = StoredDocument(doc_id, f"{doc_id}-{version}", doc_id.upper(), f"{doc_id}.txt", n, meta)
    chunks = [Chunk(f"{doc_id}#{i}", doc_id, f"{doc_id} {version} part {i} words", doc.title, i, doc.source, meta)
              for i in range(n)]
    return doc, chunks


def _write(store, docs: list[tuple[StoredDocument, list[Chunk]]]) -> None:
    chunks = [c for _, cs in docs for c in cs]
    store.replace_documents([d for d, _ in docs], chunks, HashEmbedder(16).encode([c.text for c in chunks]))


def _state(store) -> dict[str, tuple[str, list[str]]]:
    """doc id -> (hash, sorted chunk texts), read from both tables."""
    texts: dict[str, list[str]] = {}
    for batch in store.iter_chunks(batch_size=3):
        for c in batch:
            texts.setdefault(c.doc_id, []).append(c.text)
    return {d.doc_id: (d.hash, sorted(texts.get(d.doc_id, []))) for d in store.list_documents()}


def _lock_key(store, doc_id: str) -> str:
    return f"{store.table}:{doc_id}"


def _waiting_backend(store, timeout_s: float = 30.0) -> int:
    """The pid of the backend waiting on one of our advisory locks (the writer, blocked mid-transaction)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with store._cursor() as cur:
            cur.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            row = cur.fetchone()
        if row:
            return int(row[0])
        time.sleep(0.05)
    raise AssertionError("the writer never blocked on the advisory lock")


def _hold_lock(store, key: str):
    conn = store._connect()
    conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
    return conn


def test_killed_writer_leaves_the_old_state_and_a_rerun_completes(pg_uri: str) -> None:
    store = open_store(pg_uri)
    store.write_config(CONFIG)
    _write(store, [_doc("a", "v1", 2), _doc("b", "v1", 2)])
    before = _state(store)
    # The writer replaces a (3 chunks) then b; it locks documents in id order, so holding b's lock stops it
    # after a's rows are already deleted and re-inserted, inside its transaction.
    blocker = _hold_lock(store, _lock_key(store, "b"))
    script = textwrap.dedent(f"""
        import importlib.util, sys
        sys.path.insert(0, {str(SRC)!r})
        spec = importlib.util.spec_from_file_location("pg_tests", {__file__!r})
        tests = importlib.util.module_from_spec(spec); spec.loader.exec_module(tests)
        from ragtune.store import open_store
        _doc, _write = tests._doc, tests._write
        _write(open_store({pg_uri!r}), [_doc("a", "v2", 3), _doc("b", "v2", 1)])
        print("committed")
    """)
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        backend_pid = _waiting_backend(store)
        assert _state(store) == before  # a's new rows are not visible while the writer is mid-transaction
        writer.kill()
        writer.wait(timeout=30)
    finally:
        blocker.close()  # the writer's backend gets b's lock, then finds its client gone and rolls back
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with store._cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (backend_pid,))
            if cur.fetchone()[0] == 0:
                break
        time.sleep(0.05)
    assert _state(store) == before
    assert store.count() == 4
    _write(store, [_doc("a", "v2", 3), _doc("b", "v2", 1)])  # the re-run completes
    assert _state(store) == {"a": ("a-v2", [f"a v2 part {i} words" for i in range(3)]), "b": ("b-v2", ["b v2 part 0 words"])}
    store.close()


def test_dropped_connection_mid_write_is_one_line_and_nothing_half_written(pg_uri: str) -> None:
    store = open_store(pg_uri)
    store.write_config(CONFIG)
    _write(store, [_doc("a", "v1", 2), _doc("b", "v1", 2)])
    before = _state(store)
    blocker = _hold_lock(store, _lock_key(store, "b"))
    writer = open_store(pg_uri)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            _write(writer, [_doc("a", "v2", 3), _doc("b", "v2", 1)])
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            errors.append(err)

    thread = threading.Thread(target=write)
    thread.start()
    pid = _waiting_backend(store)
    with store._cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    thread.join(timeout=30)
    blocker.close()
    assert len(errors) == 1 and isinstance(errors[0], BackendError)
    assert errors[0].exit_code == 5 and "\n" not in str(errors[0]) and "connection" in str(errors[0])
    assert _state(store) == before
    _write(writer, [_doc("a", "v2", 3)])  # the store reconnects for the next write
    assert _state(store)["a"][0] == "a-v2"
    writer.close()
    store.close()


def test_two_writers_of_the_same_documents_leave_one_copy(pg_uri: str) -> None:
    open_store(pg_uri).write_config(CONFIG)
    stores = [open_store(pg_uri) for _ in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(store, version: str) -> None:
        try:
            barrier.wait()
            for round_ in range(5):
                _write(store, [_doc(d, f"{version}{round_}", 3) for d in ("a", "b", "c")])
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=work, args=(s, v)) for s, v in zip(stores, ("x", "y"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    state = _state(stores[0])
    assert sorted(state) == ["a", "b", "c"] and stores[0].count() == 9
    for doc_id, (digest, texts) in state.items():
        version = digest.split("-")[1]  # every chunk is of the version the document row names
        assert texts == [f"{doc_id} {version} part {i} words" for i in range(3)]
    for s in stores:
        s.close()


def test_single_sql_hybrid_equals_client_side_rrf(pg_uri: str) -> None:
    store = open_store(pg_uri)
    store.write_config(CONFIG)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    docs = []
    for i in range(30):
        text = " ".join(words[(i * j) % len(words)] for j in range(1, 6)) + f" item{i}"
        doc = StoredDocument(f"d{i:02d}", f"h{i}", "", "", 1, {"groups": ["hr"]} if i % 3 == 0 else {})
        docs.append((doc, [Chunk(f"d{i:02d}#0", doc.doc_id, text, "", 0, "", dict(doc.metadata))]))
    _write(store, docs)
    queries = ["alpha gamma", "theta kappa iota", "epsilon"]
    vectors = HashEmbedder(16).encode(queries)
    for filters in (None, {ACCESS_FIELD: ["eng"]}):
        for weights in ((1.0, 1.0), (1.0, 0.5), (0.0, 1.0)):
            fused = store.hybrid_search(queries, vectors, 7, filters, candidates=20, weights=weights)
            dense = store.dense_search(vectors, 20, filters)
            keyword = store.keyword_search(queries, 20, filters)
            for got, d, kw in zip(fused, dense, keyword):
                want = rrf_merge(d, kw, 7, 60, weights)
                assert [h.chunk.chunk_id for h in got] == [h.chunk.chunk_id for h in want]
                assert np.allclose([h.score for h in got], [h.score for h in want])
                if filters:
                    assert all(not h.chunk.metadata.get("groups") for h in got)
    store.close()


def test_another_embedder_or_dimension_is_a_config_error(pg_uri: str) -> None:
    store = open_store(pg_uri)
    store.write_config(CONFIG)
    with pytest.raises(ConfigError, match=r"built with embedder 'hash:16' \(dim 16\), not 'hash:16' \(dim 32\)"):
        open_store(pg_uri).write_config(StoreConfig("hash:16", 32, {}))
    with pytest.raises(ConfigError, match="not 'minilm'"):
        store.write_config(StoreConfig("minilm", 16, {}))
    assert store.read_config() == CONFIG
    store.close()


def test_wrong_user_is_one_line_exit_5() -> None:
    base = urlsplit(backend_base_uri("postgres"))
    bad = urlunsplit(base._replace(netloc=f"nobody_{uuid.uuid4().hex[:6]}:s3cret@{base.hostname}:{base.port}"))
    with pytest.raises(BackendError) as err:
        open_store(with_collection(bad, "x"))
    message = str(err.value)
    assert err.value.exit_code == 5 and "\n" not in message and "s3cret" not in message
    assert "cannot connect" in message and "nobody_" in message


def test_password_from_pgpassword(monkeypatch: pytest.MonkeyPatch) -> None:
    base = backend_base_uri("postgres")  # a trust-auth server accepts any password; this checks it is passed on
    monkeypatch.setenv("PGPASSWORD", "from-env")
    store = open_store(with_collection(base, "x"))
    conn = store._connect()
    assert conn.info.password == "from-env"
    conn.close()
    store.close()


# ---- through the CLI -------------------------------------------------------------------------------------
def test_cli_ingest_search_and_errors_on_postgres(pg_uri: str, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from ragtune.cli import build_app

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave\n\nEmployees get thirty days of paid leave per year.\n")
    (docs / "vpn.txt").write_text("Connect to the VPN before opening the intranet.\n")
    runner, app = CliRunner(), build_app()
    first = runner.invoke(app, ["ingest", str(docs), "--index", pg_uri, "--embedder", "hash"])
    assert first.exit_code == 0, first.output
    assert "2 added, 0 replaced, 0 unchanged" in first.output
    again = runner.invoke(app, ["ingest", str(docs), "--index", pg_uri])
    assert "0 added, 0 replaced, 2 unchanged" in again.output
    for mode in ("dense", "bm25", "hybrid"):
        found = runner.invoke(app, ["search", "paid leave days", "--index", pg_uri, "-k", "1", "--mode", mode, "--json"])
        assert found.exit_code == 0, found.output
        assert "leave.md" in json.dumps(json.loads(found.output)), mode
    other = runner.invoke(app, ["ingest", str(docs), "--index", pg_uri, "--embedder", "hash:32"])
    assert isinstance(other.exception, ConfigError) and "hash:32" in str(other.exception)
    # The real entry point: one line on stderr, exit 5, no password.
    base = urlsplit(pg_uri)
    bad = urlunsplit(base._replace(netloc=f"nobody_cli:s3cret@{base.hostname}:{base.port}"))
    refused = subprocess.run([sys.executable, "-c", "import sys; from ragtune.cli import main; sys.exit(main())",
                              "search", "paid leave", "--index", bad], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(SRC)})
    assert refused.returncode == 5, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "s3cret" not in refused.stderr
    assert "cannot connect" in refused.stderr and "nobody_cli" in refused.stderr


def test_a_database_without_the_extension_gets_it(tmp_path: Path) -> None:
    base = urlsplit(backend_base_uri("postgres"))
    name = f"rt_noext_{uuid.uuid4().hex[:8]}"
    admin = open_store(with_collection(urlunsplit(base), "x"))
    conn = admin._connect()
    conn.execute(f"CREATE DATABASE {name}")
    try:
        store = open_store(with_collection(urlunsplit(base._replace(path=f"/{name}")), "docs"))
        store.write_config(CONFIG)
        _write(store, [_doc("a", "v1", 2)])
        assert store.count() == 2
        store.close()
    finally:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
        conn.close()
        admin.close()


def test_hnsw_candidate_list_is_four_times_the_depth() -> None:
    from ragtune.store.postgres import ef_search

    assert [ef_search(d) for d in (5, 25, 100, 200, 400)] == [100, 100, 400, 800, 1000]
