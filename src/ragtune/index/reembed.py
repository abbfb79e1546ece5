"""Re-embed an index with another embedder into a new index: chunks reused as stored (no re-parsing), atomically.

>>> reembed_index("my-index", "my-index-tuned", "runs/emb-tuned")  # doctest: +SKIP
ReembedStats(documents=12, chunks=80, embedder_id='/abs/runs/emb-tuned', dim=384, precision='fp32', windows=0)

The live rows are written as one segment (dead rows are not re-embedded) into a temp folder beside the target,
which is renamed into place once its manifest is written: a crash or an error leaves no half index. A store
(milvus://, postgresql://) may be the source or the target; a target collection must be new, and is dropped again
when writing it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.errors import ConfigError, NotBuiltError
from ragtune.index import manifest as mf
from ragtune.index.embed import chunk_embed_text, embedder_for, with_precision
from ragtune.types import Chunk
from ragtune.uris import redact_uri


@dataclass(frozen=True)
class ReembedStats:
    documents: int
    chunks: int
    embedder_id: str
    dim: int
    precision: str
    windows: int = 0  # sentence-window size of the new index (ragtune.index.windows; 0: none)


def reembed_index(
    source: str | os.PathLike, target: str | os.PathLike, embedder_name: str, precision: str | None = None,
    embedder: Any = None, windows: int | None = None,
) -> ReembedStats:
    """Write `target`: the chunks and documents of `source`, embedded by `embedder_name` at `precision` (None: the
    embedder's default, int8 for a sentence-transformers model; ragtune.index.embed.default_precision), with
    sentence windows of `windows` sentences (0: none; None: as `source` has them; ragtune.index.windows).

    Either side may be a folder or a store URI (milvus://, postgresql://): a new store collection is written in
    batches and dropped again if the writing fails."""
    from ragtune.config import EmbedConfig
    from ragtune.index.store import Index, _store_uri, folder_path

    source_uri, target_uri = _store_uri(source), _store_uri(target)
    source_at: Any = source_uri or folder_path(source)
    target_at: Any = target_uri or folder_path(target)
    if _same(source_at, target_at):
        raise ConfigError(f"--out {target_at} is the source index; re-embed into a new folder or collection")
    if target_uri is None and target_at.exists() and (not target_at.is_dir() or any(target_at.iterdir())):
        raise ConfigError(f"{target_at} exists and is not empty; choose a new folder for the re-embedded index")
    if source_uri is None and not source_at.is_dir():
        raise NotBuiltError(f"no index at {source_at}; build it with `ragtune ingest PATH --index {source_at}`")
    old_index = Index.open(source_at)
    try:
        old = old_index.config
        documents, chunks = _in_chunk_order(old_index.documents(), old_index.chunks())
    finally:
        getattr(old_index, "close", lambda: None)()
    embed = EmbedConfig(model=embedder_name, batch_size=old.embed.batch_size, precision=precision,
                        windows=old.embed.windows if windows is None else windows)
    config = with_precision(old.model_copy(update={"embed": embed}))
    embedder = embedder or embedder_for(config.embed)
    if target_uri is not None:
        from ragtune.index.store import check_no_windows

        check_no_windows(target_uri, config)  # before anything is embedded
        return _reembed_into_store(target_uri, config, embedder, documents, chunks)

    target_at = Path(target_at)
    tmp = target_at.parent / f".{target_at.name}.{uuid.uuid4().hex[:8]}.reembedding"
    tmp.mkdir(parents=True)
    try:
        vectors = _embed(tmp, config, embedder, chunks)
        windows = Index(tmp, config, embedder).embed_windows(chunks, vectors)  # None unless the index keeps windows
        name = mf.new_segment_name(1)
        mf.write_segment(tmp, name, chunks, vectors, windows)
        entries = {}
        start = 0
        counts = _counts(chunks)
        for doc in documents:
            n = counts.get(doc.doc_id, 0)
            entries[doc.doc_id] = mf.DocEntry(doc.hash, name, start, n, doc.title, doc.source, dict(doc.metadata))
            start += n
        from ragtune.version import __version__

        new = mf.Manifest(
            config=config.model_dump(), embedder_id=embedder.model_id, dim=int(embedder.dim),
            precision=getattr(embedder, "precision", "fp32"), int8_graph=int(getattr(embedder, "int8_graph", 0)),
            generation=1, segments={name: len(chunks)},
            documents=entries, ragtune_version=__version__,
        )
        (tmp / mf.CONFIG).write_text(json.dumps(config.model_dump(), indent=2) + "\n", encoding="utf-8")
        mf.write_manifest(tmp, new)
        if target_at.is_dir():
            target_at.rmdir()  # the empty folder checked above
        os.rename(tmp, target_at)
        mf.fsync_dir(target_at.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ReembedStats(len(entries), len(chunks), new.embedder_id, new.dim, new.precision, config.embed.windows)


def _same(source: Any, target: Any) -> bool:
    if isinstance(source, Path) and isinstance(target, Path):
        return source.resolve() == target.resolve()
    return redact_uri(str(source)) == redact_uri(str(target))


def _in_chunk_order(documents: list[Any], chunks: list[Chunk]) -> tuple[list[Any], list[Chunk]]:
    """Documents in the order their chunks come (a folder's segment order; a store's by document, position) and
    the chunks grouped by document in that order: each document's rows are one run, as a manifest entry needs."""
    by_doc: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_doc.setdefault(chunk.doc_id, []).append(chunk)
    rank = {doc_id: i for i, doc_id in enumerate(by_doc)}
    ordered = sorted(documents, key=lambda d: rank.get(d.doc_id, len(rank)))
    return ordered, [c for d in ordered for c in by_doc.get(d.doc_id, [])]


def _counts(chunks: list[Chunk]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for chunk in chunks:
        counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
    return counts


def _embed(scratch: Path, config: Any, embedder: Any, chunks: list[Chunk]) -> np.ndarray:
    """The chunks' vectors through the index writer's own batched, progress-reporting path."""
    from ragtune.index.store import Index

    return Index(scratch, config, embedder)._embed([chunk_embed_text(c.title, c.text) for c in chunks])


def _reembed_into_store(uri: str, config: Any, embedder: Any, documents: list[Any], chunks: list[Chunk]) -> ReembedStats:
    """Write a new store collection; ConfigError if it holds documents already, dropped again on a failure."""
    from ragtune.index.store import Index

    vectors = _embed(Path("."), config, embedder, chunks)  # before the collection exists: an error leaves none
    index = Index.create(uri, config, embedder)  # a store-backed index (ragtune.store.index.StoreIndex)
    try:
        fill = getattr(index, "fill_new", None)
        if fill is None:
            raise ConfigError(f"{redact_uri(uri)}: this index backend cannot be written by reindex")
        fill(documents, chunks, vectors)
        return ReembedStats(len(documents), len(chunks), embedder.model_id, int(embedder.dim),
                            getattr(embedder, "precision", "fp32"))
    finally:
        index.close()
