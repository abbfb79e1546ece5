"""Ingestion on Ray: Ray Data chunks and embeds documents on actor workers; the index commits them as usual.

>>> with ray_session("local") as _:   # doctest: +SKIP
...     stats = ray_add_documents(index, load_documents(["docs/"]).documents, workers=2, dedupe_content=True)

Documents go to Ray Data in blocks; `map_batches` runs `ChunkEmbedWorker` (a callable class: each of the
`workers` actors loads the tokenizer and embedder once) and batches stream back to the driver, which hands the
chunks and vectors to `Index.add_documents(precomputed=...)`: planning, dedupe, the writer lock, the atomic commit
and the manifest are the single-process ones. Documents the index already holds unchanged are not sent.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ragtune.config import BUNDLED, IndexConfig
from ragtune.distributed.ray_cluster import import_ray, worker_env
from ragtune.index import Index, IngestStats
from ragtune.progress import progress_task
from ragtune.types import Chunk, Document

logger = logging.getLogger(__name__)

DOCS_PER_BATCH = 64  # documents per map_batches call: a few hundred chunks, enough for efficient encode batches


class ChunkEmbedWorker:
    """Ray Data callable class: a batch of documents (JSON) -> their chunks (JSON) and vectors, (n, dim) float32."""

    def __init__(self, config_json: str):
        from ragtune.index.embed import get_embedder
        from ragtune.ingest import load_tokenizer

        self.config = IndexConfig.model_validate_json(config_json)
        model = self.config.embed.model
        self.tokenizer = load_tokenizer(BUNDLED if model.startswith("hash") else model)  # as Index._prepare does
        self.embedder = get_embedder(model)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from ragtune.index.embed import chunk_embed_text, encode_in_steps
        from ragtune.ingest import chunk_documents

        docs = [Document(**json.loads(text)) for text in batch["doc"]]
        chunks = chunk_documents(docs, self.config.chunk, self.tokenizer)
        texts = [chunk_embed_text(c.title, c.text) for c in chunks]
        vectors = encode_in_steps(self.embedder, texts, self.config.embed.batch_size, lambda n: None)
        return {"chunk": np.array([json.dumps(dataclasses.asdict(c)) for c in chunks], dtype=object),
                "vector": vectors}  # (n_chunks, dim)


def embed_on_ray(docs: Sequence[Document], config: IndexConfig, workers: int = 1,
                 docs_per_batch: int = DOCS_PER_BATCH) -> dict[str, tuple[list[Chunk], np.ndarray]]:
    """Chunk and embed docs with `workers` Ray actors (Ray must be connected: see ray_session).

    Returns doc id -> (its chunks in order, their vectors), the form `Index.add_documents(precomputed=...)` takes.
    """
    if not docs:
        return {}
    ray = import_ray()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ragtune's own progress bar below
    context.verbose_stats_logs = False
    items = [{"doc": json.dumps(dataclasses.asdict(d), ensure_ascii=False)} for d in docs]
    blocks = max(1, -(-len(items) // docs_per_batch))
    dataset = ray.data.from_items(items, override_num_blocks=blocks)
    dataset = dataset.map_batches(
        ChunkEmbedWorker, fn_constructor_kwargs={"config_json": config.model_dump_json()},
        batch_size=docs_per_batch, batch_format="numpy", num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=min(workers, blocks)),  # `workers` actors, each loads the model once
        runtime_env={"env_vars": worker_env()},
    )
    by_doc: dict[str, list[tuple[Chunk, np.ndarray]]] = {}
    with progress_task("Embedding (Ray)", total=None) as task:
        for batch in dataset.iter_batches(batch_format="numpy", batch_size=None):
            vectors = np.asarray(batch["vector"], dtype=np.float32)
            for text, vector in zip(batch["chunk"], vectors):
                chunk = Chunk(**json.loads(text))
                by_doc.setdefault(chunk.doc_id, []).append((chunk, vector))
            task.advance(len(vectors))
    out: dict[str, tuple[list[Chunk], np.ndarray]] = {}
    for doc_id, pairs in by_doc.items():
        pairs.sort(key=lambda p: p[0].position)
        out[doc_id] = ([c for c, _ in pairs], np.stack([v for _, v in pairs]))
    return out


def ray_add_documents(index: Index, docs: Sequence[Document], *, workers: int = 1, dedupe_content: bool = False,
                      lock_timeout_s: float | None = None) -> IngestStats:
    """`index.add_documents(docs, dedupe_content)` with chunking and embedding done on Ray (connected already)."""
    precomputed = embed_on_ray(_needing_embedding(index, docs, dedupe_content), index.config, workers)
    logger.info("ray: %d document(s) chunked and embedded by %d worker(s)", len(precomputed), workers)
    return index.add_documents(docs, dedupe_content, lock_timeout_s, precomputed=precomputed)


def _needing_embedding(index: Index, docs: Sequence[Document], dedupe_content: bool) -> list[Document]:
    """The documents the index's plan would chunk and embed now (new or changed); the rest are not sent."""
    from ragtune.index import manifest as mf
    from ragtune.index.plan import make_plan
    from ragtune.ingest import document_hash

    latest = {d.doc_id: d for d in docs}  # the last version of an id given twice, as add_documents keeps
    if not (index.path / mf.MANIFEST).is_file():
        return list(latest.values())
    hashes = {doc_id: document_hash(doc) for doc_id, doc in latest.items()}
    return make_plan(mf.read_manifest(index.path), latest, hashes, dedupe_content).todo
