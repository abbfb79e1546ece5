"""The entity graph persisted inside the index folder, kept in step with the index incrementally.

Layout (under <index>/graph/):
    manifest.json        {"format_version", "extractor" ("rules" or "llm:<model>"), "generation", "parts": {name: n_docs},
                          "documents": {doc_id: {"hash", "part"}}} — replaced atomically (os.replace)
    parts/<name>.jsonl   one line per document extracted in one sync: {"doc_id", "hash",
                          "chunks": [{"chunk_id", "mentions": [[key, surface, sentence], ...]}]}; immutable
    communities-<key>.json   cached Louvain communities and summaries for one graph content key

Crash safety and increments: the graph manifest records, per document, the content hash it was extracted
from and the index generation it reflects. `sync_graph` diffs it against the index state: documents whose
hash changed or that are new are extracted (only those) into a new part; deleted ones are dropped from the
manifest. The first sync in a process (or `ragtune.graph.follow_index_commits()`) subscribes `on_index_commit` to index
commits (ragtune.index.hooks), so the Index calls it right after its own commit; a crash between the two commits
leaves a graph that lags, and the next `sync_graph` (every graph retriever runs it) repairs it by the same
diff. A crash inside a sync leaves unreferenced part files, removed by the next sync.
"""

from __future__ import annotations

import json
import logging
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import NotBuiltError, RagtuneError
from ragtune.graph.extract import Mention
from ragtune.index.hooks import on_commit
from ragtune.index.manifest import fsync_dir, write_bytes_atomic
from ragtune.progress import progress_task

logger = logging.getLogger(__name__)

_GRAPHS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()  # IndexState -> EntityGraph

GRAPH_DIR = "graph"
GRAPH_MANIFEST = "manifest.json"
PARTS = "parts"
FORMAT_VERSION = 1
EXTRACTOR = "rules"  # the default extractor spec (see ragtune.graph.llm_extract.get_extractor)
LOCK_TIMEOUT_S = 10.0


@dataclass
class GraphManifest:
    generation: int = 0
    parts: dict[str, int] = field(default_factory=dict)
    documents: dict[str, dict[str, str]] = field(default_factory=dict)  # doc_id -> {"hash", "part"}
    extractor: str = EXTRACTOR
    format_version: int = FORMAT_VERSION

    def content_key(self) -> str:
        """Identifies the graph's content (which document versions it holds), for derived caches."""
        import hashlib

        parts = [self.extractor] + sorted(f"{d}:{e['hash']}" for d, e in self.documents.items())
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def graph_dir(index_dir: Path) -> Path:
    return Path(index_dir) / GRAPH_DIR


def graph_exists(index_dir: Path) -> bool:
    """Whether the index has a graph (then every index commit updates it)."""
    return (graph_dir(index_dir) / GRAPH_MANIFEST).is_file()


def read_graph_manifest(index_dir: Path) -> GraphManifest:
    """The committed graph manifest, or an empty one when the index has no graph yet."""
    path = graph_dir(index_dir) / GRAPH_MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return GraphManifest()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NotBuiltError(f"graph manifest {path} is unreadable: {exc}") from exc
    if data.get("format_version") != FORMAT_VERSION:
        logger.warning("graph at %s has format %r; it will be rebuilt", path, data.get("format_version"))
        return GraphManifest(extractor=str(data.get("extractor", EXTRACTOR)))
    return GraphManifest(
        extractor=str(data.get("extractor", EXTRACTOR)),
        generation=int(data.get("generation", 0)),
        parts={str(k): int(v) for k, v in data.get("parts", {}).items()},
        documents={str(k): dict(v) for k, v in data.get("documents", {}).items()},
    )


def write_graph_manifest(index_dir: Path, manifest: GraphManifest) -> None:
    """Atomically replace the graph manifest (the graph's commit point)."""
    folder = graph_dir(index_dir)
    payload = {
        "format_version": manifest.format_version, "extractor": manifest.extractor,
        "generation": manifest.generation, "parts": manifest.parts, "documents": manifest.documents,
    }
    write_bytes_atomic(folder / GRAPH_MANIFEST, json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8"))
    fsync_dir(folder)


def _write_part(index_dir: Path, name: str, records: list[dict[str, Any]]) -> None:
    folder = graph_dir(index_dir) / PARTS
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
    write_bytes_atomic(folder / f"{name}.jsonl", lines.encode("utf-8"))
    fsync_dir(folder)


def _read_parts(index_dir: Path, manifest: GraphManifest) -> dict[str, dict[str, Any]]:
    """doc_id -> record, for the live documents of the manifest (a doc's latest part only)."""
    out: dict[str, dict[str, Any]] = {}
    wanted: dict[str, set[str]] = {}
    for doc_id, entry in manifest.documents.items():
        wanted.setdefault(entry["part"], set()).add(doc_id)
    for name, doc_ids in wanted.items():
        path = graph_dir(index_dir) / PARTS / f"{name}.jsonl"
        try:
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    record = json.loads(line)
                    if record["doc_id"] in doc_ids and record["hash"] == manifest.documents[record["doc_id"]]["hash"]:
                        out[record["doc_id"]] = record
        except FileNotFoundError as exc:
            raise NotBuiltError(f"graph of index {index_dir} is incomplete: part {path.name} is missing") from exc
    return out


def _collect_garbage(index_dir: Path, manifest: GraphManifest) -> None:
    folder = graph_dir(index_dir)
    keep = set(manifest.parts)
    if (folder / PARTS).is_dir():
        for path in (folder / PARTS).iterdir():
            if path.name.startswith(".") or path.name.split(".", 1)[0] not in keep:
                path.unlink(missing_ok=True)
    current = f"communities-{manifest.content_key()}.json"
    for path in folder.glob("communities-*.json"):
        if path.name != current:
            path.unlink(missing_ok=True)
    for path in folder.glob(".*.tmp"):
        path.unlink(missing_ok=True)


def _extract_records(state: Any, doc_ids: list[str], extractor: str = EXTRACTOR) -> list[dict[str, Any]]:
    """Extract mentions for the chunks of the given documents of an IndexState."""
    from ragtune.graph.llm_extract import get_extractor

    extract_document = get_extractor(extractor)
    by_doc: dict[str, list[Any]] = {d: [] for d in doc_ids}
    for chunk in state.chunks:
        if chunk.doc_id in by_doc:
            by_doc[chunk.doc_id].append(chunk)
    records = []
    with progress_task("Extracting entities", total=len(doc_ids)) as task:
        for doc_id in doc_ids:
            chunks = sorted(by_doc[doc_id], key=lambda c: c.position)
            texts = [f"{c.title}.\n{c.text}" if c.title and c.position == 0 else c.text for c in chunks]
            mentions = extract_document(texts)
            records.append({
                "doc_id": doc_id, "hash": state.manifest.documents[doc_id].hash,
                "chunks": [{"chunk_id": c.chunk_id, "mentions": [[m.key, m.surface, m.sentence] for m in ms]}
                           for c, ms in zip(chunks, mentions)],
            })
            task.advance(1)
    return records


def _diff(state: Any, manifest: GraphManifest) -> tuple[list[str], list[str]]:
    docs = state.manifest.documents
    todo = [d for d, e in docs.items() if manifest.documents.get(d, {}).get("hash") != e.hash]
    gone = [d for d in manifest.documents if d not in docs]
    return todo, gone


def sync_graph(index: Any, lock_held: bool = False, extractor: str | None = None) -> GraphManifest:
    """Bring the persisted graph in step with `index.state`, extracting only new or changed documents.

    Creates the graph on first use. `extractor` ('rules' or 'llm:<model>', default: the one the graph was
    built with, else 'rules'); a different one than recorded re-extracts everything. Takes the index's writer
    lock unless the caller holds it; when the lock or the folder is unavailable, the caller still gets a
    consistent in-memory result via `load_records`.
    """
    from ragtune.index.lock import writer_lock

    on_commit(on_index_commit)  # from now on this process keeps the graph in step with the index's commits
    state = index.state
    manifest = read_graph_manifest(index.path)
    todo, gone = _diff(state, manifest)
    if not todo and not gone and graph_exists(index.path) and extractor in (None, manifest.extractor):
        return manifest
    if lock_held:
        manifest = _apply(index.path, state, extractor)
    else:
        with writer_lock(index.path, timeout_s=LOCK_TIMEOUT_S):
            index.reload()
            manifest = _apply(index.path, index.state, extractor)
    _GRAPHS.pop(index.state, None)  # same generation, new content (e.g. another extractor): rebuild in memory
    return manifest


def _apply(index_dir: Path, state: Any, extractor: str | None) -> GraphManifest:
    manifest = read_graph_manifest(index_dir)
    if extractor is not None and extractor != manifest.extractor:
        manifest = GraphManifest(extractor=extractor)  # another extractor: re-extract every document
    todo, gone = _diff(state, manifest)
    graph_dir(index_dir).mkdir(exist_ok=True)
    for doc_id in gone:
        manifest.documents.pop(doc_id, None)
    if todo:
        name = f"part-{state.generation:06d}-{uuid.uuid4().hex[:8]}"
        records = _extract_records(state, todo, manifest.extractor)
        _write_part(index_dir, name, records)
        manifest.parts[name] = len(records)
        for record in records:
            manifest.documents[record["doc_id"]] = {"hash": record["hash"], "part": name}
    live_parts = {e["part"] for e in manifest.documents.values()}
    manifest.parts = {n: c for n, c in manifest.parts.items() if n in live_parts}
    manifest.generation = state.generation
    write_graph_manifest(index_dir, manifest)
    _collect_garbage(index_dir, manifest)
    logger.info("graph of %s: %d documents extracted, %d dropped (generation %d)",
                index_dir, len(todo), len(gone), state.generation)
    return manifest


def on_index_commit(index: Any) -> None:
    """Subscribed to every index commit (the Index calls it holding its writer lock): update an existing graph.

    Failure here never undoes the index commit; the graph just lags until the next `sync_graph`."""
    if not graph_exists(index.path):
        return
    try:
        sync_graph(index, lock_held=True)
    except (RagtuneError, OSError, ValueError) as exc:
        logger.warning("graph of index %s not updated (it will catch up on next use): %s", index.path, exc)


@dataclass(frozen=True)
class GraphRecords:
    """Mentions per live chunk row of one IndexState (rows align with state.chunks)."""

    mentions: list[list[Mention]]
    content_key: str
    state: Any = None  # the IndexState the rows align with


def load_records(index: Any, persist: bool = True) -> GraphRecords:
    """Mentions per chunk row for the index's current state: synced to disk (persist=True), or, when the
    folder cannot be written (read-only, locked), extracted in memory for the missing documents."""
    state = index.state
    manifest: GraphManifest | None = None
    if persist:
        try:
            manifest = sync_graph(index)
            state = index.state  # sync may have reloaded
        except (RagtuneError, OSError) as exc:
            logger.warning("graph of index %s not persisted (%s); extracting in memory", index.path, exc)
    if manifest is None:
        manifest = read_graph_manifest(index.path)
    records = _read_parts(index.path, manifest) if manifest.documents else {}
    todo, _gone = _diff(state, manifest)
    for record in _extract_records(state, todo, manifest.extractor) if todo else []:
        records[record["doc_id"]] = record
    by_chunk: dict[str, list[Mention]] = {}
    for record in records.values():
        for chunk in record["chunks"]:
            by_chunk[chunk["chunk_id"]] = [Mention(k, s, int(n)) for k, s, n in chunk["mentions"]]
    mentions = [by_chunk.get(c.chunk_id, []) for c in state.chunks]
    key = manifest.content_key() if not todo else f"mem-{uuid.uuid4().hex[:8]}"
    return GraphRecords(mentions=mentions, content_key=key, state=state)


def load_graph(index: Any, persist: bool = True) -> tuple[Any, Any]:
    """(IndexState, EntityGraph) for the index's current state: synced, then built once per IndexState.
    The graph's chunk rows align with that state's chunks. persist=False writes nothing (read-only commands such
    as `ragtune graph show`): the persisted graph is read and what it lacks is extracted in memory."""
    from ragtune.graph.entity_graph import EntityGraph

    state = index.state
    graph = _GRAPHS.get(state)
    if graph is not None:
        return state, graph
    records = load_records(index, persist=persist)
    graph = EntityGraph.build(records.mentions, content_key=records.content_key)
    if persist:
        _GRAPHS[records.state] = graph
    return records.state, graph
