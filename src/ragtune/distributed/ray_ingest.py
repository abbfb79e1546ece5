"""Ingestion on Ray: Ray Data reads the files, then chunks and embeds them on actor workers; the index commits.

>>> with ray_session("local") as _:   # doctest: +SKIP
...     result = load_on_ray(*discover(["docs/"]), workers=2)   # the driver only lists the files
...     stats = ray_add_documents(index, result.documents, workers=2, dedupe_content=True)

Two Ray Data pipelines. `load_on_ray`: the listed paths go to `from_items`; `map_batches` runs `load_listed_files`
on task workers, each file loaded by `load_file` on a worker; the documents and skip reports stream back and are
merged in listing order exactly as `load_documents` merges them (same skipped list, same duplicate-id rule). They
come back to the driver because planning needs every document's hash and the commit (manifest, dedupe) the
documents themselves; file text is small next to the vectors that follow it. The driver then plans against the index manifest (document hashes: unchanged documents and same-content twins are not
sent on), and `embed_on_ray` sends the rest through `ChunkEmbedWorker` (a callable class: each of the `workers`
actors loads the tokenizer and embedder once). Batches stream back to the driver, which hands the chunks and
vectors to `Index.add_documents(precomputed=...)`: planning, dedupe, the writer lock, the atomic commit and the
manifest are the single-process ones.

The workers read the files themselves: on a remote cluster every node must see the input files at the paths the
driver lists (relative paths are made absolute; a shared filesystem). A file a worker cannot find while the
driver still can stops the ingest with one InputError line naming the file and the worker's host.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.config import BUNDLED, IndexConfig
from ragtune.distributed.ray_cluster import import_ray, worker_env
from ragtune.errors import ConfigError, InputError
from ragtune.index import Index, IngestStats
from ragtune.ingest import LoadResult, Skipped, load_file, merge_loaded
from ragtune.ingest.decoding import printable_name
from ragtune.progress import progress_task
from ragtune.types import Chunk, Document

logger = logging.getLogger(__name__)

DOCS_PER_BATCH = 64  # documents per map_batches call: a few hundred chunks, enough for efficient encode batches
FILES_PER_BATCH = 16  # files per loading call: small, so one large file does not hold up many others


def load_listed_files(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ray Data function: a batch of listed files -> per file, its `load_file` items as JSON, or the worker's host
    name in `missing_on` when the file is not there (paths travel as bytes: a name need not be valid UTF-8)."""
    import socket

    loaded, missing_on = [], []
    for path, name, doc_id in zip(batch["path"], batch["name"], batch["doc_id"]):
        path = Path(os.fsdecode(path))
        here = path.exists()
        items = load_file(path, os.fsdecode(doc_id), os.fsdecode(name)) if here else []
        loaded.append(json.dumps([_item_json(item) for item in items], ensure_ascii=False))
        missing_on.append("" if here else socket.gethostname())
    return {"position": batch["position"], "items": np.array(loaded, dtype=object),
            "missing_on": np.array(missing_on, dtype=object)}


def load_on_ray(files: Sequence[tuple[Path, str]], links: Iterable[Skipped] = (), *, workers: int = 1,
                files_per_batch: int = FILES_PER_BATCH) -> LoadResult:
    """`load_documents` with the files read on `workers` Ray tasks (Ray connected: see ray_session).

    `files` and `links` are `ragtune.ingest.discover`'s listing, made on the driver; the result (documents, skip
    reports, their order) is the one `load_documents` gives. Every worker must see the files at the listed paths:
    InputError when one cannot find a file the driver still sees."""
    if not files:
        return LoadResult.of(merge_loaded(links, []))
    ray = import_ray()
    _quiet_data(ray)
    rows = [{"position": i, "path": os.fsencode(os.path.abspath(path)), "name": os.fsencode(path),
             "doc_id": os.fsencode(doc_id)} for i, (path, doc_id) in enumerate(files)]
    blocks = max(1, -(-len(rows) // files_per_batch))
    dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
        load_listed_files, batch_size=files_per_batch, batch_format="numpy", num_cpus=1,
        compute=ray.data.TaskPoolStrategy(size=min(workers, blocks)), runtime_env={"env_vars": worker_env()},
    )
    loaded: dict[int, list[Document | Skipped]] = {}
    with progress_task("Loading files (Ray)", total=len(files)) as task:
        for batch in dataset.iter_batches(batch_format="numpy", batch_size=None):
            for position, items, missing_on in zip(batch["position"], batch["items"], batch["missing_on"]):
                loaded[int(position)] = _file_items(*files[int(position)], items, missing_on)
                task.advance(1)
    logger.info("ray: %d file(s) loaded by %d worker(s)", len(files), workers)
    return LoadResult.of(merge_loaded(links, (loaded[i] for i in range(len(files)))))


def _file_items(path: Path, doc_id: str, items: str, missing_on: str) -> list[Document | Skipped]:
    """One listed file's items from its `load_listed_files` row. A file the worker did not find is either gone
    since it was listed (reported as the single-process path reports it) or not on that worker's filesystem."""
    if not missing_on:
        return [_item_from_json(item) for item in json.loads(items)]
    if path.exists():
        raise InputError(f"a Ray worker on host {missing_on!r} cannot read {printable_name(str(path))}, which this "
                         "machine listed: with --ray on a cluster the input files must be at the same path on every node")
    return list(load_file(path, doc_id))


def _item_json(item: Document | Skipped) -> dict[str, Any]:
    return {"document" if isinstance(item, Document) else "skipped": dataclasses.asdict(item)}


def _item_from_json(item: dict[str, Any]) -> Document | Skipped:
    return Document(**item["document"]) if "document" in item else Skipped(**item["skipped"])


class ChunkEmbedWorker:
    """Ray Data callable class: a batch of documents (JSON) -> their chunks (JSON), vectors, (n, dim) float32, and
    the id of the vectors it made (ragtune.index.embed.vectors_id: model, precision, int8 graph), which the driver
    checks against its own embedder's so a node with another embedder or ragtune never mixes vectors into an index.
    (Ray's core worker logs one "E" line per run for this actor pool, ray-project/ray#53727: Ray Data itself keeps the
    actors' constructor arguments in the object store.)"""

    def __init__(self, config_json: str):
        from ragtune.index.embed import embedder_for, vectors_id_of
        from ragtune.ingest import load_tokenizer

        self.config = IndexConfig.model_validate_json(config_json)
        model = self.config.embed.model
        self.tokenizer = load_tokenizer(BUNDLED if model.startswith("hash") else model)  # as Index._prepare does
        self.embedder = embedder_for(self.config.embed)
        self.vectors_id = vectors_id_of(self.embedder)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from ragtune.index.embed import chunk_embed_text, encode_in_steps
        from ragtune.ingest import chunk_documents

        docs = [Document(**json.loads(text)) for text in batch["doc"]]
        chunks = chunk_documents(docs, self.config.chunk, self.tokenizer)
        texts = [chunk_embed_text(c.title, c.text) for c in chunks]
        vectors = encode_in_steps(self.embedder, texts, self.config.embed.batch_size, lambda n: None)
        out = {"chunk": np.array([json.dumps(dataclasses.asdict(c)) for c in chunks], dtype=object),
               "vector": vectors,  # (n_chunks, dim)
               "vectors_id": np.array([self.vectors_id] * len(chunks), dtype=object)}
        if self.config.embed.windows:  # sentence windows: each chunk's (count, dim) float32 block, as bytes
            from ragtune.index.windows import embed_windows

            windows = embed_windows(chunks, self.config.embed.windows, lambda t: encode_in_steps(
                self.embedder, t, self.config.embed.batch_size, lambda n: None), vectors)
            out["windows"] = np.array([windows.vectors[s : s + n].astype(np.float32).tobytes()
                                       for s, n in zip(windows.starts, windows.counts)], dtype=object)
        return out


def embed_on_ray(docs: Sequence[Document], config: IndexConfig, workers: int = 1,
                 docs_per_batch: int = DOCS_PER_BATCH, vectors_id: str | None = None,
                 ) -> dict[str, tuple[Any, ...]]:
    """Chunk and embed docs with `workers` Ray actors (Ray must be connected: see ray_session).

    Returns doc id -> (its chunks in order, their vectors), plus their sentence windows
    (ragtune.index.windows.Windows) when `config.embed.windows`: the form `Index.add_documents(precomputed=...)` takes.
    `vectors_id`: the driver's embedder's (ragtune.index.embed.vectors_id); ConfigError when a worker's vectors
    have another (another model, precision or int8 graph on that node).
    """
    if not docs:
        return {}
    ray = import_ray()
    _quiet_data(ray)
    items = [{"doc": json.dumps(dataclasses.asdict(d), ensure_ascii=False)} for d in docs]
    blocks = max(1, -(-len(items) // docs_per_batch))
    dataset = ray.data.from_items(items, override_num_blocks=blocks)
    dataset = dataset.map_batches(
        ChunkEmbedWorker, fn_constructor_kwargs={"config_json": config.model_dump_json()},
        batch_size=docs_per_batch, batch_format="numpy", num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=min(workers, blocks)),  # `workers` actors, each loads the model once
        runtime_env={"env_vars": worker_env()},
    )
    by_doc: dict[str, list[tuple[Chunk, np.ndarray, np.ndarray | None]]] = {}
    with progress_task("Embedding (Ray)", total=len(docs)) as task:  # documents: a batch holds whole documents
        for batch in dataset.iter_batches(batch_format="numpy", batch_size=None):
            made = {str(v) for v in batch["vectors_id"]}
            if vectors_id is not None and made - {vectors_id}:
                raise ConfigError(f"a Ray worker embedded with {sorted(made - {vectors_id})[0]!r}, not this index's "
                                  f"{vectors_id!r}: every node needs the same ragtune, embedder and precision")
            vectors = np.asarray(batch["vector"], dtype=np.float32)
            windows = batch["windows"] if config.embed.windows else [None] * len(vectors)
            seen = set()
            for text, vector, window_bytes in zip(batch["chunk"], vectors, windows):
                chunk = Chunk(**json.loads(text))
                block = (None if window_bytes is None
                         else np.frombuffer(window_bytes, np.float32).reshape(-1, vectors.shape[1]))
                by_doc.setdefault(chunk.doc_id, []).append((chunk, vector, block))
                seen.add(chunk.doc_id)
            task.advance(len(seen))
    out: dict[str, tuple[Any, ...]] = {}
    for doc_id, rows in by_doc.items():
        rows.sort(key=lambda r: r[0].position)
        out[doc_id] = ([c for c, _, _ in rows], np.stack([v for _, v, _ in rows]))
        if config.embed.windows:
            from ragtune.index.windows import Windows

            blocks = [w for _, _, w in rows]
            out[doc_id] += (Windows(np.concatenate(blocks), np.array([len(b) for b in blocks], dtype=np.int64)),)
    return out


def _quiet_data(ray: Any) -> None:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ragtune's own progress bars
    context.verbose_stats_logs = False


def ray_add_documents(index: Index, docs: Sequence[Document], *, workers: int = 1, dedupe_content: bool = False,
                      lock_timeout_s: float | None = None) -> IngestStats:
    """`index.add_documents(docs, dedupe_content)` with chunking and embedding done on Ray (connected already)."""
    from ragtune.index.embed import vectors_id_of

    todo = _needing_embedding(index, docs, dedupe_content)
    precomputed = embed_on_ray(todo, index.config, workers, vectors_id=vectors_id_of(index.embedder) if todo else None)
    logger.info("ray: %d document(s) chunked and embedded by %d worker(s)", len(precomputed), workers)
    return index.add_documents(docs, dedupe_content, lock_timeout_s, precomputed=precomputed)


def _needing_embedding(index: Index, docs: Sequence[Document], dedupe_content: bool) -> list[Document]:
    """The documents the index's plan would chunk and embed now (new or changed); the rest are not sent."""
    from ragtune.index import manifest as mf
    from ragtune.index.plan import make_plan
    from ragtune.ingest import document_hash

    latest = {d.doc_id: d for d in docs}  # the last version of an id given twice, as add_documents keeps
    hashes = {doc_id: document_hash(doc) for doc_id, doc in latest.items()}
    if getattr(index, "is_store", False):  # the documents a store holds, as its own add_documents plans with
        from types import SimpleNamespace

        live = SimpleNamespace(documents={d.doc_id: d for d in index.store.list_documents()})
        return make_plan(live, latest, hashes, dedupe_content).todo
    if not (index.path / mf.MANIFEST).is_file():
        return list(latest.values())
    return make_plan(mf.read_manifest(index.path), latest, hashes, dedupe_content).todo
