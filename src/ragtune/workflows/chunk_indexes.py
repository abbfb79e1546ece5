"""The indexes a search's chunk sizes answer from: the index itself at its own size, else a re-chunked copy.

A copy is built once per chunk size into the search folder (`<root>/chunks-<N>`, ragtune.index.rechunk: the exact
documents re-chunked, vectors through one embedding cache keyed by embedder id and chunk text, seeded with the
index's own vectors and every copy already there), then reused by later trials, by `--resume` and by the test
run of `compare --search`. A copy that no longer matches the index (other documents, embedder or chunking) is
built again. A size that cannot be built (the documents cannot be read back exactly) raises CannotRechunk,
which the search records as a skipped trial.

Gold: a question's gold chunk id names a passage of the index's own chunking; on a re-chunked copy the same id
is another passage (or none), so there a question is judged by its gold document (`doc_level_gold`).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.index.rechunk import (
    CannotRechunk,
    EmbeddingCache,
    exact_documents,
    rechunk_index,
    stored_vectors_id,
)
from ragtune.index.store import index_location
from ragtune.types import Example
from ragtune.workflows.search_space import chunk_config

logger = logging.getLogger(__name__)

CHUNK_INDEXES = "chunk-indexes"  # the folder, under a search's out folder, that holds the re-chunked copies


class ChunkIndexes:
    """The index of each chunk size for one source index (a folder Index), built on first use under `root`."""

    def __init__(self, index: Any, root: Path):
        self.index, self.root = index, Path(root)
        self.own = index.config.chunk
        self.cache = EmbeddingCache()
        self.built: list[int] = []  # chunk sizes built (not reused) by this object, in order
        self.build_s: dict[int, float] = {}
        self._indexes: dict[int, Any] = {self.own.chunk_tokens: index}
        self._failed: dict[int, str] = {}
        self._documents: list[Any] | None = None
        self._seeded = False

    @classmethod
    def under(cls, index: Any, search_root: Path) -> ChunkIndexes:
        """The copies of `index` under `search_root`/chunk-indexes/<index name>-<hash of its path> (one folder per
        source index, so the arms of a comparison that share an index share its copies)."""
        path = str(Path(getattr(index, "path", str(index))).resolve())
        name = f"{Path(path).name}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"
        return cls(index, Path(search_root) / CHUNK_INDEXES / name)

    def get(self, chunk_tokens: int) -> Any:
        """The index chunked at `chunk_tokens` (built now if not already there); CannotRechunk when it cannot be."""
        chunk_tokens = int(chunk_tokens)
        if chunk_tokens in self._indexes:
            return self._indexes[chunk_tokens]
        if chunk_tokens in self._failed:
            raise CannotRechunk(self._failed[chunk_tokens])
        try:
            index = self._kept(chunk_tokens) or self._build(chunk_tokens)
        except CannotRechunk as exc:
            self._failed[chunk_tokens] = str(exc)
            raise
        self._indexes[chunk_tokens] = index
        return index

    def path_of(self, chunk_tokens: int) -> Path:
        return self.root / f"chunks-{int(chunk_tokens)}"

    def describe(self, chunk_tokens: int, relative_to: Path | None = None) -> dict[str, Any]:
        """What best.json and results.json say about the index of `chunk_tokens`: its chunking and folder."""
        chunk = chunk_config(int(chunk_tokens), self.own)
        if chunk == self.own:
            where = index_location(self.index)
        else:
            path = self.path_of(chunk_tokens)
            inside = relative_to is not None and path.is_relative_to(relative_to)
            where = str(path.relative_to(relative_to)) if inside else str(path)
        return {"chunk_tokens": chunk.chunk_tokens, "overlap_tokens": chunk.overlap_tokens, "index": where,
                "rechunked": chunk != self.own}

    def _kept(self, chunk_tokens: int) -> Any:
        """The copy already in the folder (an earlier run's), when it still matches the index; else None."""
        path = self.path_of(chunk_tokens)
        if not path.is_dir():
            return None
        from ragtune.index import Index

        try:
            kept = Index.open(path, embedder=self.index.embedder)
            if self._matches(kept, chunk_tokens):
                logger.info("chunk size %d: reusing %s", chunk_tokens, path)
                return kept
        except RagtuneError:
            pass
        logger.info("chunk size %d: %s no longer matches the index; building it again", chunk_tokens, path)
        shutil.rmtree(path)
        return None

    def _matches(self, kept: Any, chunk_tokens: int) -> bool:
        own = self.index.state.manifest
        theirs = kept.state.manifest
        return (kept.config == self.index.config.model_copy(update={"chunk": chunk_config(chunk_tokens, self.own)})
                and stored_vectors_id(kept) == stored_vectors_id(self.index)
                and {d: e.hash for d, e in theirs.documents.items()} == {d: e.hash for d, e in own.documents.items()})

    def _build(self, chunk_tokens: int) -> Any:
        if self._documents is None:
            self._documents = exact_documents(self.index)
        if not self._seeded:  # the index's own vectors, and those of every copy an earlier run left
            self.cache.add_index(self.index)
            for index in self._indexes.values():
                if index is not self.index:
                    self.cache.add_index(index)
            self._seeded = True
        t0 = time.perf_counter()
        before = self.cache.embedded
        index = rechunk_index(self.index, self.path_of(chunk_tokens), chunk_config(chunk_tokens, self.own),
                              self._documents, self.cache)
        self.cache.add_index(index)
        self.built.append(chunk_tokens)
        self.build_s[chunk_tokens] = round(time.perf_counter() - t0, 2)
        logger.info("chunk size %d: %d chunks in %s (%d embedded, the rest from the cache)", chunk_tokens,
                    len(index), index.path, self.cache.embedded - before)
        return index


def doc_level_gold(examples: list[Example]) -> list[Example]:
    """`examples` as a re-chunked index judges them (see the module docstring): a gold chunk id is dropped, its
    document kept (taken from the chunk id, f"{doc_id}#{position}", when the question names none)."""
    return [replace(e, chunk_id="", doc_id=e.doc_id or e.chunk_id.rpartition("#")[0]) if e.chunk_id else e
            for e in examples]
