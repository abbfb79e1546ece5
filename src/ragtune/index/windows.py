"""Sentence windows: besides each chunk's vector, one vector per run of N consecutive sentences of the chunk, and
dense search that scores a chunk by its best window (max-sim over its windows).

A 200-token chunk's single vector blurs several statements; a query usually matches one or two sentences. Scoring
a chunk by the window closest to the query keeps the chunk as the unit that is returned (and read by the
generator) while matching at sentence grain (the "sentence window" / small-to-big idea). On SciFact TEST, bundled
MiniLM, no training (`python bench/bench_retrieval.py --windows 2 [--precision fp32]`; README, "Sentence
windows"): dense nDCG@10 int8 0.667 -> 0.695, fp32 0.668 -> 0.703; hybrid within +-0.006; for 3.6x the vectors
and ~2.7x the embedding time. Opt-in (`ingest --windows 2`) for that cost.

A chunk of fewer than N sentences has one window, its whole text; every chunk has at least one. Windows are
embedded as chunks are (title prefixed, `chunk_embed_text`), by the index's embedder at the index's precision.

In a folder index the windows of a segment are two files beside its vectors (ragtune.index.manifest):
    segments/<name>.windows.npy    (windows, dim) float32, grouped by chunk in row order
    segments/<name>.wcounts.npy    (rows,) int64, the number of windows of each chunk row
A store index (milvus://, postgresql://) does not keep windows (refused when asked).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ragtune.index.dense import ANN_MIN_ROWS, DenseIndex, top_k_rows
from ragtune.index.embed import chunk_embed_text
from ragtune.text import split_sentences
from ragtune.types import Chunk

# Up to this many window vectors the search is exact (one matmul, ~4 ms a query at 40k x 384 here); above, an
# HNSW graph over the windows answers an oversampled query whose windows are grouped by chunk.
EXACT_MAX_WINDOWS = 4 * ANN_MIN_ROWS
QUERY_BLOCK = 128  # queries scored together in the exact search: bounds the (queries, windows) score matrix


@dataclass(frozen=True)
class Windows:
    """Window vectors of a run of chunk rows: `counts[i]` windows for row i, stored consecutively in `vectors`."""

    vectors: np.ndarray  # (sum(counts), dim) float32
    counts: np.ndarray  # (rows,) int64, each >= 1

    def __post_init__(self) -> None:
        if self.counts.ndim != 1 or int(self.counts.sum()) != len(self.vectors) or (len(self.counts) and self.counts.min() < 1):
            raise ValueError(f"{len(self.vectors)} window vectors do not match counts {self.counts.tolist()[:8]}…")

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def starts(self) -> np.ndarray:
        """The first window of each row."""
        return np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64) if len(self.counts) else np.zeros(0, np.int64)

    def parents(self) -> np.ndarray:
        """The row of each window."""
        return np.repeat(np.arange(len(self.counts), dtype=np.int64), self.counts)

    def select(self, rows: np.ndarray | Sequence[int]) -> Windows:
        """The windows of these rows, in this order."""
        rows = np.asarray(rows, dtype=np.int64)
        counts = self.counts[rows]
        if not len(rows):
            return Windows(self.vectors[:0], counts)
        # window j of the selection: starts[row] + its offset within the row
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        return Windows(np.asarray(self.vectors[np.repeat(self.starts[rows], counts) + offsets]), counts)


def concat(parts: Sequence[Windows], dim: int) -> Windows:
    """One Windows of several, rows in order."""
    if not parts:
        return Windows(np.zeros((0, dim), np.float32), np.zeros(0, np.int64))
    return Windows(np.concatenate([np.asarray(p.vectors, dtype=np.float32) for p in parts]),
                   np.concatenate([p.counts for p in parts]).astype(np.int64))


def window_texts(chunks: Sequence[Chunk], size: int) -> tuple[list[str], np.ndarray]:
    """The texts to embed (title prefixed) of each chunk's windows of `size` sentences, and the count per chunk.

    >>> texts, counts = window_texts([Chunk("c", "d", "One. Two. Three.", "T")], 2)
    >>> texts, counts.tolist()
    (['T One. Two.', 'T Two. Three.'], [2])
    """
    texts: list[str] = []
    counts = np.zeros(len(chunks), dtype=np.int64)
    for i, chunk in enumerate(chunks):
        sentences = split_sentences(chunk.text) or [chunk.text]
        runs = [" ".join(sentences[s : s + size]) for s in range(max(1, len(sentences) - size + 1))]
        texts.extend(chunk_embed_text(chunk.title, run) for run in runs)
        counts[i] = len(runs)
    return texts, counts


def embed_windows(chunks: Sequence[Chunk], size: int, embed: Callable[[list[str]], np.ndarray],
                  chunk_vectors: np.ndarray | None = None) -> Windows:
    """The windows of `chunks`, embedded by `embed` (the index writer's batched, progress-reporting path).

    Each distinct window text is embedded once (overlapping chunks share windows), and a window whose text is a
    chunk's own embedded text takes that chunk's vector from `chunk_vectors` (row-aligned with `chunks`): on SciFact
    (200-token chunks, 2-sentence windows) 38,872 texts are embedded for 42,907 windows.
    """
    texts, counts = window_texts(chunks, size)
    known: dict[str, np.ndarray] = {}
    if chunk_vectors is not None:
        known = {chunk_embed_text(c.title, c.text): v for c, v in zip(chunks, chunk_vectors, strict=True)}
    todo = list(dict.fromkeys(t for t in texts if t not in known))
    if todo:
        known.update(zip(todo, np.asarray(embed(todo), dtype=np.float32)))
    if not texts:  # no chunks: (0, dim) vectors
        empty = chunk_vectors[:0] if chunk_vectors is not None else embed([])
        return Windows(np.asarray(empty, dtype=np.float32), counts)
    return Windows(np.stack([known[t] for t in texts]).astype(np.float32, copy=False), counts)


class WindowDenseIndex:
    """Dense search over chunk rows, a row scored by its best window: the same `search` as DenseIndex."""

    def __init__(self, windows: Windows, cache_dir: Path | None = None, key: str = ""):
        self.windows = windows
        self._starts = windows.starts
        self._parents = windows.parents()
        self._vectors = np.ascontiguousarray(windows.vectors, dtype=np.float32)
        self._ann = None
        if len(self._vectors) > EXACT_MAX_WINDOWS:
            ann = DenseIndex(self._vectors, cache_dir=cache_dir, key=f"{key}-windows" if key else "")
            self._ann = ann if ann.backend == "hnsw" else None
        self.backend = "hnsw" if self._ann is not None else "exact"

    def __len__(self) -> int:
        return len(self.windows)

    def search(self, queries: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top-k (rows, scores) per query vector, a row's score its best window's; mask (rows,) bool restricts the
        rows before ranking."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        empty = (np.zeros(0, np.int64), np.zeros(0, np.float32))
        if not len(self.windows) or k <= 0 or (mask is not None and not mask.any()):
            return [empty for _ in range(len(queries))]
        if self._ann is not None:
            return self._ann_search(queries, k, mask)
        out = []
        for block in range(0, len(queries), QUERY_BLOCK):
            scores = queries[block : block + QUERY_BLOCK] @ self._vectors.T  # (nq, windows)
            best = np.maximum.reduceat(scores, self._starts, axis=1)  # (nq, rows)
            if mask is not None:
                best[:, ~mask] = -np.inf
            out.extend(top_k_rows(row, k) for row in best)
        return out

    def _ann_search(self, queries: np.ndarray, k: int, mask: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Oversampled HNSW over the windows, grouped by row (a row's first hit is its best)."""
        want = min(len(self._vectors), max(4 * k, k + 64))
        window_mask = None if mask is None else mask[self._parents]
        out = []
        for w_rows, w_scores in self._ann.search(queries, want, window_mask):
            rows = self._parents[w_rows]
            _, first = np.unique(rows, return_index=True)
            first.sort()  # best first: the hits come sorted by score
            out.append((rows[first][:k], w_scores[first][:k].astype(np.float32)))
        return out
