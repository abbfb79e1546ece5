"""Faults and concurrency on every backend: kill -9 during ingest, two writers at once, two servers on one store,
and access groups (0 leaked chunks). Server backends need RAGTUNE_TEST_MILVUS / RAGTUNE_TEST_POSTGRES."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragtune.index import HashEmbedder, Index
from ragtune.retrieve import open_retriever
from ragtune.types import Document

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))
from serve_helpers import ADMIN_KEY, ScriptedGenerator, auth, make_app  # noqa: E402
from test_serve_access import GROUPS, N_DOCS, WORDS, corpus, marker, visible  # noqa: E402
from test_store_conformance import CONFIG, open_index  # noqa: E402

SRC = str(Path(__file__).resolve().parents[2] / "src")
N_BATCH_DOCS = 40

WRITER = r'''
import sys
from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig
from ragtune.index import HashEmbedder, Index
from ragtune.types import Document
location, version, n, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
config = IndexConfig(embed=EmbedConfig(model="hash:64"), chunk=ChunkConfig(chunk_tokens=32, overlap_tokens=4))
index = Index.open_or_create(location, config, embedder=HashEmbedder(64))
docs = [Document(f"doc{i:04d}.md", " ".join(f"{version} word{i} w{j} alpha beta gamma delta" for j in range(12)),
                 f"Doc {i}") for i in range(n)]
for start in range(0, n, batch):
    index.add_documents(docs[start:start + batch])
    print("batch", start, flush=True)
print("done", flush=True)
'''


def _writer(tmp_path: Path, location: str, version: str, n: int, batch: int) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, str(script), location, version, str(n), str(batch)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _assert_consistent(location: str, n: int, version: str) -> None:
    """Every document present once, its chunks exactly its current version's: no duplicates, no orphans."""
    index = Index.open(location, embedder=HashEmbedder(64))
    docs = index.documents()
    assert sorted(d.doc_id for d in docs) == [f"doc{i:04d}.md" for i in range(n)]
    chunks = index.chunks()
    ids = [c.chunk_id for c in chunks]
    assert len(ids) == len(set(ids)), "duplicate chunks"
    assert len(index) == len(chunks) == sum(d.n_chunks for d in docs)
    assert {c.doc_id for c in chunks} == {d.doc_id for d in docs}, "orphan chunks"
    other = {"v1": "v2", "v2": "v1"}[version]
    assert all(other not in c.text.split() for c in chunks), "a chunk of another version survived"
    hits = open_retriever(index, "dense").retrieve([f"{version} word3 alpha"], k=50)[0]
    assert len({h.chunk.chunk_id for h in hits}) == len(hits)


@pytest.mark.integration
def test_kill_9_during_ingest_then_rerun_completes(location: str, tmp_path: Path) -> None:
    n = 4 * N_BATCH_DOCS
    first = _writer(tmp_path, location, "v1", n, N_BATCH_DOCS)
    assert first.wait(300) == 0, first.stderr.read()
    _assert_consistent(location, n, "v1")
    # Replace every document (v2), killed with SIGKILL somewhere inside the second batch.
    second = _writer(tmp_path, location, "v2", n, N_BATCH_DOCS)
    line = second.stdout.readline()
    assert line.startswith("batch"), second.stderr.read()
    time.sleep(0.05)
    second.send_signal(signal.SIGKILL)
    second.wait(60)
    partial = Index.open(location, embedder=HashEmbedder(64))
    assert len({d.doc_id for d in partial.documents()}) == n  # nothing lost: old or new version of each
    rerun = _writer(tmp_path, location, "v2", n, n)
    assert rerun.wait(300) == 0, rerun.stderr.read()
    _assert_consistent(location, n, "v2")


@pytest.mark.integration
def test_two_writers_at_once_leave_no_duplicates(location: str, tmp_path: Path) -> None:
    n = 2 * N_BATCH_DOCS
    open_index(location)  # the folder backend creates its folder on the first commit; both may race for it
    writers = [_writer(tmp_path, location, "v1", n, N_BATCH_DOCS // 2) for _ in range(2)]
    for writer in writers:
        assert writer.wait(300) == 0, writer.stderr.read()
    _assert_consistent(location, n, "v1")


def test_two_servers_on_one_store_see_each_others_documents(backend: str, location: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    if backend == "folder":
        pytest.skip("folder: two servers on one folder are covered by tests/serve (reload on commit)")
    open_index(location).add_documents(corpus([[]] * 4))
    apps = [make_app(tmp_path / f"s{i}", index=open_index(location), generator=ScriptedGenerator(), k=2)[0]
            for i in range(2)]
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        body = {"id": "fresh.md", "text": "The zqfreshmarker lighthouse opens at noon.", "title": "Fresh"}
        assert one.put("/v1/documents/fresh.md", headers=auth(ADMIN_KEY), json=body).status_code in (200, 201)
        reply = two.post("/v1/chat/completions", headers=auth(ADMIN_KEY), json={
            "model": "rag", "messages": [{"role": "user", "content": "When does the zqfreshmarker lighthouse open?"}],
        }).json()
        assert reply["ragtune"]["sources"][0]["doc_id"] == "fresh.md"
        assert "zqfreshmarker" in reply["choices"][0]["message"]["content"]


group_sets = st.lists(st.sampled_from(GROUPS), max_size=2, unique=True)


def test_access_groups_never_leak(backend: str, location: str, tmp_path: Path) -> None:
    """The serve access property (tests/serve/test_serve_access.py) on a store-backed index: 0 leaked chunks."""
    from fastapi.testclient import TestClient

    index = open_index(location)

    @settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(doc_groups=st.lists(group_sets, min_size=N_DOCS, max_size=N_DOCS), user_groups=group_sets,
           words=st.lists(st.sampled_from(WORDS + [marker(i) for i in range(N_DOCS)]), min_size=1, max_size=3))
    def check(doc_groups, user_groups, words) -> None:
        index.add_documents(corpus(doc_groups))  # same ids each time: changed groups replace the documents
        key = "user-key-0001"
        app, _, _ = make_app(tmp_path, keys=[f"{key}=" + ",".join(user_groups)], index=index, k=4)
        allowed = {f"d{i}.md" for i in range(N_DOCS) if visible(doc_groups[i], user_groups)}
        with TestClient(app) as client:
            found = client.post("/v1/search", headers=auth(key), json={"query": " ".join(words), "k": 10}).json()
        hits = found["data"][0]["hits"]
        assert [h["doc_id"] for h in hits if h["doc_id"] not in allowed] == []
        assert len(hits) == len(allowed)  # filtered before ranking: every visible document is reachable

    check()
