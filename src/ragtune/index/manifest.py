"""The index folder on disk: an atomic manifest plus immutable segment files.

Layout of an index folder:
    manifest.json              the one source of truth; replaced atomically (os.replace) on every commit
    config.json                the resolved IndexConfig (for people; the manifest has it too)
    segments/<name>.chunks.jsonl   chunk records, one JSON object a line (never modified after the commit)
    segments/<name>.vectors.npy    (rows, dim) float32 L2-normalised vectors, row-aligned with the chunks
    .write.lock                the writer lock

A commit writes new segments under fresh names (tmp file, fsync, rename), then replaces the manifest; a
kill before the replace leaves the old manifest (the new files are garbage, collected by the next commit),
a kill after it leaves the new state. Deletions are tombstones: rows no document points at any more.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.errors import NotBuiltError
from ragtune.types import Chunk

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CONFIG = "config.json"
SEGMENTS = "segments"
# Test hook: seconds to sleep after the segments are written and before the manifest is replaced.
PAUSE_ENV = "RAGTUNE_TEST_COMMIT_PAUSE_S"


@dataclass
class DocEntry:
    """Where a live document's chunks are: rows [start, start + n_chunks) of one segment."""

    hash: str
    segment: str
    start: int
    n_chunks: int
    title: str = ""
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Manifest:
    config: dict[str, Any]
    embedder_id: str = ""
    dim: int = 0
    generation: int = 0
    segments: dict[str, int] = field(default_factory=dict)  # name -> rows, in commit order
    documents: dict[str, DocEntry] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    ragtune_version: str = ""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path) -> Manifest:
        if data.get("format_version") != FORMAT_VERSION:
            raise NotBuiltError(
                f"index {path} has format version {data.get('format_version')!r}; this ragtune reads {FORMAT_VERSION}"
            )
        docs = {doc_id: DocEntry(**entry) for doc_id, entry in data.get("documents", {}).items()}
        return cls(
            config=data["config"],
            embedder_id=data.get("embedder_id", ""),
            dim=int(data.get("dim", 0)),
            generation=int(data.get("generation", 0)),
            segments={str(k): int(v) for k, v in data.get("segments", {}).items()},
            documents=docs,
            format_version=FORMAT_VERSION,
            ragtune_version=data.get("ragtune_version", ""),
        )

    def live_rows(self) -> int:
        return sum(entry.n_chunks for entry in self.documents.values())

    def dead_rows(self) -> int:
        return sum(self.segments.values()) - self.live_rows()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a unique temp file beside path, fsync, then os.replace onto path."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_manifest(index_dir: Path) -> Manifest:
    path = Path(index_dir) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NotBuiltError(f"no index at {index_dir} (missing {MANIFEST}); build it with `ragtune ingest`") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NotBuiltError(f"index manifest {path} is unreadable: {exc}") from exc
    return Manifest.from_json(data, Path(index_dir))


def write_manifest(index_dir: Path, manifest: Manifest) -> None:
    """Atomically replace the manifest (the commit point), then fsync the folder."""
    pause = float(os.environ.get(PAUSE_ENV, "0") or 0)
    if pause > 0:
        time.sleep(pause)
    payload = json.dumps(manifest.to_json(), ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")
    write_bytes_atomic(Path(index_dir) / MANIFEST, payload)
    fsync_dir(Path(index_dir))


def new_segment_name(generation: int) -> str:
    return f"seg-{generation:06d}-{uuid.uuid4().hex[:8]}"


def _chunk_record(chunk: Chunk) -> dict[str, Any]:
    return {
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "text": chunk.text,
        "title": chunk.title,
        "position": chunk.position,
        "source": chunk.source,
        "metadata": chunk.metadata,
    }


def write_segment(index_dir: Path, name: str, chunks: list[Chunk], vectors: np.ndarray) -> None:
    """Write one immutable segment (chunks jsonl + vectors npy), each file fsync'd and renamed into place."""
    if len(chunks) != len(vectors):
        raise ValueError(f"segment {name}: {len(chunks)} chunks but {len(vectors)} vectors")
    seg_dir = Path(index_dir) / SEGMENTS
    seg_dir.mkdir(exist_ok=True)
    lines = "".join(json.dumps(_chunk_record(c), ensure_ascii=False) + "\n" for c in chunks)
    write_bytes_atomic(seg_dir / f"{name}.chunks.jsonl", lines.encode("utf-8"))
    tmp = seg_dir / f".{name}.vectors.{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(vectors, dtype=np.float32))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, seg_dir / f"{name}.vectors.npy")
    fsync_dir(seg_dir)


def read_segment_chunks(index_dir: Path, name: str) -> list[Chunk]:
    path = Path(index_dir) / SEGMENTS / f"{name}.chunks.jsonl"
    try:
        with open(path, encoding="utf-8") as fh:
            return [Chunk(**json.loads(line)) for line in fh if line.strip()]
    except FileNotFoundError as exc:
        raise NotBuiltError(f"index {index_dir} is incomplete: segment file {path.name} is missing") from exc


def read_segment_vectors(index_dir: Path, name: str) -> np.ndarray:
    path = Path(index_dir) / SEGMENTS / f"{name}.vectors.npy"
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError as exc:
        raise NotBuiltError(f"index {index_dir} is incomplete: segment file {path.name} is missing") from exc


def collect_garbage(index_dir: Path, manifest: Manifest) -> int:
    """Remove segment files (and stray temp files) the manifest does not reference. Returns files removed."""
    seg_dir = Path(index_dir) / SEGMENTS
    if not seg_dir.is_dir():
        return 0
    keep = set(manifest.segments)
    removed = 0
    for path in seg_dir.iterdir():
        name = path.name.split(".", 1)[0]
        if path.name.startswith(".") or name not in keep:
            path.unlink(missing_ok=True)
            removed += 1
    for path in Path(index_dir).glob(f".{MANIFEST}.*.tmp"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
