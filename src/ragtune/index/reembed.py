"""Re-embed an index with another embedder into a new folder: chunks reused as stored (no re-parsing), atomically.

>>> reembed_index("my-index", "my-index-tuned", "runs/emb-tuned")  # doctest: +SKIP
ReembedStats(documents=12, chunks=80, embedder_id='/abs/runs/emb-tuned', dim=384, precision='fp32')

The live rows are written as one segment (dead rows are not re-embedded) into a temp folder beside the target,
which is renamed into place once its manifest is written: a crash or an error leaves no half index.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError, NotBuiltError
from ragtune.index import manifest as mf
from ragtune.index.embed import chunk_embed_text, embedder_for, stored_config, with_precision


@dataclass(frozen=True)
class ReembedStats:
    documents: int
    chunks: int
    embedder_id: str
    dim: int
    precision: str


def reembed_index(
    source: str | os.PathLike, target: str | os.PathLike, embedder_name: str, precision: str | None = None,
    embedder: Any = None,
) -> ReembedStats:
    """Write `target`: the chunks and documents of `source`, embedded by `embedder_name` at `precision` (None: the
    embedder's default, int8 for a sentence-transformers model; ragtune.index.embed.default_precision)."""
    from ragtune.config import EmbedConfig
    from ragtune.index.state import IndexState, docs_in_state_order
    from ragtune.index.store import Index

    source, target = Path(source), Path(target)
    if target.resolve() == source.resolve():
        raise ConfigError(f"--out {target} is the source index; re-embed into a new folder")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"{target} exists and is not empty; choose a new folder for the re-embedded index")
    if not source.is_dir():
        raise NotBuiltError(f"no index at {source}; build it with `ragtune ingest PATH --index {source}`")
    manifest = mf.read_manifest(source)
    try:
        old = stored_config(manifest.config)
    except ValueError as exc:
        raise mf.corrupt(source, f"{mf.MANIFEST} config", str(exc)) from None
    embed = EmbedConfig(model=embedder_name, batch_size=old.embed.batch_size, precision=precision)
    config = with_precision(old.model_copy(update={"embed": embed}))
    embedder = embedder or embedder_for(config.embed)
    state = IndexState(source, manifest)
    texts = [chunk_embed_text(c.title, c.text) for c in state.chunks]

    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.reembedding"
    tmp.mkdir(parents=True)
    try:
        vectors = Index(tmp, config, embedder)._embed(texts)  # the writer's own batched, progress-reporting path
        name = mf.new_segment_name(1)
        mf.write_segment(tmp, name, state.chunks, vectors)
        documents = {}
        start = 0
        for doc_id, entry in docs_in_state_order(manifest):
            documents[doc_id] = mf.DocEntry(**{**entry.__dict__, "segment": name, "start": start})
            start += entry.n_chunks
        from ragtune.version import __version__

        new = mf.Manifest(
            config=config.model_dump(), embedder_id=embedder.model_id, dim=int(embedder.dim),
            precision=getattr(embedder, "precision", "fp32"), int8_graph=int(getattr(embedder, "int8_graph", 0)),
            generation=1, segments={name: len(state.chunks)},
            documents=documents, ragtune_version=__version__,
        )
        (tmp / mf.CONFIG).write_text(json.dumps(config.model_dump(), indent=2) + "\n", encoding="utf-8")
        mf.write_manifest(tmp, new)
        if target.is_dir():
            target.rmdir()  # the empty folder checked above
        os.rename(tmp, target)
        mf.fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ReembedStats(len(documents), len(state.chunks), new.embedder_id, new.dim, new.precision)
