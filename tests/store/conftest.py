"""Backends for the store conformance suite: the folder index always; Milvus and PostgreSQL when a server's
base URI is in RAGTUNE_TEST_MILVUS / RAGTUNE_TEST_POSTGRES (`scripts/services.sh up` prints both; `make test`
exports them). Each test gets a fresh collection, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ENV = {"milvus": "RAGTUNE_TEST_MILVUS", "postgres": "RAGTUNE_TEST_POSTGRES"}
EXTRA_MODULE = {"milvus": "pymilvus", "postgres": "psycopg"}
BACKENDS = ["folder", "milvus", "postgres"]


def backend_base_uri(backend: str) -> str:
    """The server base URI for a backend, or skip with the reason."""
    var = ENV[backend]
    base = os.environ.get(var, "").strip()
    if not base:
        pytest.skip(f"{backend}: set {var} (scripts/services.sh up prints it) to run against a real server")
    pytest.importorskip(EXTRA_MODULE[backend], reason=f"{backend}: pip install 'ragtune[{backend}]'")
    return base


def fresh_location(backend: str, tmp_path: Path) -> str:
    """A new, empty index location for backend: a folder path or a URI naming an unused collection."""
    if backend == "folder":
        return str(tmp_path / "index")
    from ragtune.store import with_collection

    return with_collection(backend_base_uri(backend), f"t_{uuid.uuid4().hex[:12]}")


def drop_location(location: str) -> None:
    from ragtune.store import is_store_uri, open_store

    if not is_store_uri(location):
        return
    store = open_store(location)
    try:
        store.drop()
    finally:
        store.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def location(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty index location on the backend under test, removed afterwards."""
    loc = fresh_location(backend, tmp_path)
    try:
        yield loc
    finally:
        drop_location(loc)


@pytest.fixture(params=["milvus", "postgres"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URI naming an unused collection on each server backend (VectorStore-level tests)."""
    loc = fresh_location(request.param, tmp_path)
    try:
        yield loc
    finally:
        drop_location(loc)


@pytest.fixture(params=["milvus", "postgres"])
def engine_uri(request: pytest.FixtureRequest) -> str:
    """A server base URI for each engine backend (skips as backend_base_uri does)."""
    return backend_base_uri(request.param)
