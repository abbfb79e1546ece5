"""kill -9 of the server during document uploads: after a restart the index is consistent and no
acknowledged upload is lost."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

SERVER = Path(__file__).with_name("serve_fake_server.py")
pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(index_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "RAGTUNE_NO_PROGRESS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, str(SERVER), str(index_dir), str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start within 60s")


def doc_text(key: str, version: int) -> str:
    return f"The document key is {key}. Its version is {version}. " + "filler words here " * 20


def test_kill_9_during_uploads_loses_no_acknowledged_upload(tmp_path):
    index_dir = tmp_path / "index"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(index_dir, port)
    acked: dict[str, str] = {}  # doc id -> text the server acknowledged
    stop = threading.Event()

    def uploader(worker: int) -> None:
        with httpx.Client(timeout=10) as client:
            i = 0
            while not stop.is_set():
                doc_id, version = f"w{worker}-d{i % 12}", i // 12  # re-uploads replace earlier versions
                text = doc_text(f"key{worker}x{i % 12}", version)
                try:
                    response = client.put(f"{url}/v1/documents/{doc_id}", json={"text": text, "title": doc_id})
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged
                if response.status_code in (200, 201):
                    acked[doc_id] = text
                i += 1

    threads = [threading.Thread(target=uploader, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acked) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(server.pid, signal.SIGKILL)  # mid-upload: the uploaders are still sending
    server.wait(10)
    stop.set()
    for thread in threads:
        thread.join(15)
    assert len(acked) >= 20

    server = start(index_dir, port)
    try:
        listed = httpx.get(f"{url}/v1/documents", timeout=10).json()["data"]
        ids = [d["id"] for d in listed]
        assert len(ids) == len(set(ids))
        missing = set(acked) - set(ids)
        assert not missing, f"acknowledged uploads lost: {sorted(missing)}"
        for doc_id, text in acked.items():  # the acknowledged version (or a later one) is what is served
            key = text.split("key is ")[1].split(".")[0]
            hits = httpx.post(f"{url}/v1/search", json={"query": key, "k": 3}, timeout=10).json()["data"][0]["hits"]
            assert hits and hits[0]["doc_id"] == doc_id
            version = lambda t: int(t.split("version is ")[1].split(".")[0])  # noqa: E731
            assert version(hits[0]["text"]) >= version(text)
        # The server still accepts writes after the crash (the writer lock died with the killed process).
        response = httpx.put(f"{url}/v1/documents/after-crash", json={"text": "written after the restart"}, timeout=10)
        assert response.status_code == 201
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
    from ragtune.index import HashEmbedder, Index

    index = Index.open(index_dir, embedder=HashEmbedder())
    chunk_ids = [c.chunk_id for c in index.chunks()]
    assert len(chunk_ids) == len(set(chunk_ids))
    assert {c.doc_id for c in index.chunks()} == {d.doc_id for d in index.documents()}
