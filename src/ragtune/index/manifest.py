"""The index folder on disk: an atomic manifest plus immutable segment files.

Layout of an index folder:
    manifest.json              the one source of truth; replaced atomically (os.replace) on every commit
    config.json                the resolved IndexConfig (for people; the manifest has it too)
    segments/<name>.chunks.jsonl   chunk records, one JSON object a line (never modified after the commit)
    segments/<name>.vectors.npy    (rows, dim) float32 L2-normalised vectors, row-aligned with the chunks
    segments/<name>.windows.npy    with sentence windows (embed.windows > 0): the windows' vectors, and
    segments/<name>.wcounts.npy    how many windows each chunk row has (ragtune.index.windows)
    .write.lock                the writer lock

A commit writes new segments under fresh names (tmp file, fsync, rename), then replaces the manifest; a
kill before the replace leaves the old manifest (the new files are garbage, collected by the next commit),
a kill after it leaves the new state. Deletions are tombstones: rows no document points at any more.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.atomic import atomic_path, fsync_dir, write_bytes_atomic, write_lines_atomic  # noqa: F401  (re-exported)
from ragtune.config import IndexConfig
from ragtune.errors import ConfigError, IndexCorruptError, NotBuiltError
from ragtune.index.embed import stored_config
from ragtune.types import Chunk

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CONFIG = "config.json"
SEGMENTS = "segments"
# Test hook: seconds to sleep after the segments are written and before the manifest is replaced.
PAUSE_ENV = "RAGTUNE_TEST_COMMIT_PAUSE_S"
RECOVER = "re-ingest into a new index (ragtune ingest PATH --index NEW) or restore the folder from a backup"


def corrupt(index_dir: Path, where: str, problem: str) -> IndexCorruptError:
    """The one-line error for a damaged index file: which file (and line), what is wrong, how to recover."""
    problem = " ".join(str(problem).split())[:200]
    return IndexCorruptError(f"index {index_dir} is corrupt: {where}: {problem}; {RECOVER}")


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
    precision: str = "fp32"  # of the stored vectors' embedder: "fp32", or "int8" (quantised ONNX graph)
    # int8 vectors only: the export format (ragtune.index.onnx_query.EXPORT_FORMAT_VERSION) of the quantised graph
    # that made them; 0 when not recorded (int8 indexes built before 2026-11-29). Another format's int8 vectors
    # differ (cosine ~0.99), so they are never added to these.
    int8_graph: int = 0
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
        if not isinstance(data, dict):
            raise corrupt(path, MANIFEST, f"expected a JSON object, got {type(data).__name__}")
        if "format_version" not in data:
            raise corrupt(path, MANIFEST, "no format_version: not an index manifest")
        if data.get("format_version") != FORMAT_VERSION:
            raise NotBuiltError(
                f"index {path} has format version {data.get('format_version')!r}; this ragtune reads {FORMAT_VERSION}"
            )
        try:
            docs = {doc_id: DocEntry(**entry) for doc_id, entry in data.get("documents", {}).items()}
            manifest = cls(
                config=data["config"],
                embedder_id=data.get("embedder_id", ""),
                dim=int(data.get("dim", 0)),
                precision=str(data.get("precision", "fp32")),
                int8_graph=int(data.get("int8_graph", 0)),
                generation=int(data.get("generation", 0)),
                segments={str(k): int(v) for k, v in data.get("segments", {}).items()},
                documents=docs,
                format_version=FORMAT_VERSION,
                ragtune_version=data.get("ragtune_version", ""),
            )
        except KeyError as exc:
            raise corrupt(path, MANIFEST, f"missing field {exc}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise corrupt(path, MANIFEST, f"bad field ({exc})") from None
        unknown = {e.segment for e in docs.values()} - set(manifest.segments)
        if unknown or not isinstance(manifest.config, dict):
            problem = f"documents point at unknown segment {sorted(unknown)[0]}" if unknown else "config is not an object"
            raise corrupt(path, MANIFEST, problem)
        return manifest

    def live_rows(self) -> int:
        return sum(entry.n_chunks for entry in self.documents.values())

    def dead_rows(self) -> int:
        return sum(self.segments.values()) - self.live_rows()


def read_manifest(index_dir: Path) -> Manifest:
    path = Path(index_dir) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NotBuiltError(f"no index at {index_dir} (missing {MANIFEST}); build it with `ragtune ingest`") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise corrupt(Path(index_dir), MANIFEST, f"not valid JSON ({exc})") from None
    except OSError as exc:
        raise corrupt(Path(index_dir), MANIFEST, f"unreadable ({exc.strerror or exc})") from None
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


def write_segment(index_dir: Path, name: str, chunks: list[Chunk], vectors: np.ndarray, windows: Any = None) -> None:
    """Write one immutable segment (chunks jsonl + vectors npy, and the sentence windows' two arrays when given),
    each file fsync'd and renamed into place."""
    if len(chunks) != len(vectors) or (windows is not None and len(windows) != len(chunks)):
        raise ValueError(f"segment {name}: {len(chunks)} chunks but {len(vectors)} vectors"
                         + (f" and {len(windows)} window counts" if windows is not None else ""))
    seg_dir = Path(index_dir) / SEGMENTS
    seg_dir.mkdir(exist_ok=True)
    # line by line: a big segment is never one string in memory
    write_lines_atomic(seg_dir / f"{name}.chunks.jsonl",
                       (json.dumps(_chunk_record(chunk), ensure_ascii=False) + "\n" for chunk in chunks))
    arrays = {"vectors": np.ascontiguousarray(vectors, dtype=np.float32)}
    if windows is not None:
        arrays["windows"] = np.ascontiguousarray(windows.vectors, dtype=np.float32)
        arrays["wcounts"] = np.asarray(windows.counts, dtype=np.int64)
    for kind, array in arrays.items():
        with atomic_path(seg_dir / f"{name}.{kind}.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, array)


def _missing(index_dir: Path, path: Path) -> NotBuiltError:
    return NotBuiltError(f"index {index_dir} is incomplete: segment file {SEGMENTS}/{path.name} is missing; {RECOVER}")


def read_segment_chunks(index_dir: Path, name: str) -> list[Chunk]:
    """The chunks of one segment; IndexCorruptError naming the file and line of a damaged record."""
    path = Path(index_dir) / SEGMENTS / f"{name}.chunks.jsonl"
    where = f"{SEGMENTS}/{path.name}"
    chunks: list[Chunk] = []
    number = 0
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise TypeError(f"expected a JSON object, got {type(record).__name__}")
                chunk = Chunk(**record)
                if not isinstance(chunk.text, str) or not isinstance(chunk.chunk_id, str):
                    raise TypeError("'chunk_id' and 'text' must be strings")
                chunks.append(chunk)
    except FileNotFoundError:
        raise _missing(Path(index_dir), path) from None
    except UnicodeDecodeError as exc:
        raise corrupt(Path(index_dir), where, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise corrupt(Path(index_dir), f"{where} line {number}", f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except TypeError as exc:
        raise corrupt(Path(index_dir), f"{where} line {number}", f"not a chunk record ({exc})") from None
    except OSError as exc:
        raise corrupt(Path(index_dir), where, f"unreadable ({exc.strerror or exc})") from None
    return chunks


def read_segment_vectors(index_dir: Path, name: str, dim: int = 0, kind: str = "vectors") -> np.ndarray:
    """The (rows, dim) vectors (`kind` "windows": window vectors) of one segment, memory-mapped; IndexCorruptError
    if the file is damaged."""
    path = Path(index_dir) / SEGMENTS / f"{name}.{kind}.npy"
    where = f"{SEGMENTS}/{path.name}"
    try:
        vectors = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise _missing(Path(index_dir), path) from None
    except (ValueError, OSError, EOFError) as exc:
        raise corrupt(Path(index_dir), where, f"not a readable .npy array ({exc})") from None
    if vectors.ndim != 2 or (dim and vectors.shape[1] != dim) or vectors.dtype.kind != "f":
        raise corrupt(Path(index_dir), where, f"expected (rows, {dim or 'dim'}) floats, found {vectors.shape} {vectors.dtype}")
    return vectors


def read_segment_windows(index_dir: Path, name: str, rows: int, dim: int = 0) -> Any:
    """The sentence windows (ragtune.index.windows.Windows) of one segment of `rows` chunk rows, memory-mapped;
    NotBuiltError if missing, IndexCorruptError if they do not fit the segment."""
    from ragtune.index.windows import Windows

    vectors = read_segment_vectors(index_dir, name, dim, kind="windows")
    path = Path(index_dir) / SEGMENTS / f"{name}.wcounts.npy"
    try:
        counts = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise _missing(Path(index_dir), path) from None
    except (ValueError, OSError, EOFError) as exc:
        raise corrupt(Path(index_dir), f"{SEGMENTS}/{path.name}", f"not a readable .npy array ({exc})") from None
    try:
        if counts.shape != (rows,) or counts.dtype.kind not in "iu":
            raise ValueError(f"expected {rows} window counts, found {counts.shape} {counts.dtype}")
        return Windows(vectors, counts.astype(np.int64))
    except ValueError as exc:
        raise corrupt(Path(index_dir), f"{SEGMENTS}/{path.name}", str(exc)) from None


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


def check_creatable(path: Path) -> None:
    """ConfigError unless path is missing or an empty folder (where a new index may go)."""
    if path.exists() and not (path / MANIFEST).is_file() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError(f"{path} exists and is not an index (no {MANIFEST}); choose an empty or new folder")


def create_folder(path: Path, config: IndexConfig) -> None:
    """Create an empty index folder atomically (a temp folder renamed into place). If another writer
    created the index meanwhile, that one is kept (ConfigError if its config differs)."""
    from ragtune.version import __version__

    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.creating"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as exc:
        raise ConfigError(f"cannot create index folder {path}: {exc.strerror or exc}") from None
    try:
        (tmp / SEGMENTS).mkdir()
        (tmp / CONFIG).write_text(json.dumps(config.model_dump(), indent=2) + "\n", encoding="utf-8")
        write_manifest(tmp, Manifest(config=config.model_dump(), ragtune_version=__version__))
        try:
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()  # an empty folder the user made for us
            os.rename(tmp, path)
        except OSError as exc:
            if not (path / MANIFEST).is_file():
                raise ConfigError(f"cannot create index folder {path}: {exc.strerror or exc}") from None
            theirs = read_manifest(path).config  # another writer won the race
            if stored_config(theirs) != config:
                raise ConfigError(f"index {path} was just created with another config: {theirs}") from None
        else:
            fsync_dir(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
