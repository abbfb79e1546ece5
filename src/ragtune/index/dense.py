"""Dense search over L2-normalised vectors: exact (numpy matmul) or an HNSW graph (faiss), chosen by size.

Measured on this 2-core machine (bench/bench_latency.py): an exact matmul costs ~1 ms at 10k x 384 but
~10-17 ms at 100k, while faiss HNSW (M=32, efSearch=256) answers in ~1.2 ms with recall@10 0.987 of exact
(efSearch=128: 0.6 ms but recall 0.967).
So below ANN_MIN_ROWS rows the search is exact; above, an HNSW graph is built once per committed state and
cached on disk under <index>/ann/<state key>.faiss (a derived cache, safe to delete).

Filters are applied before ranking: a selective filter (few rows) searches exactly over the allowed rows;
a broad one asks HNSW with an ID selector, so the graph only ever returns allowed rows.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.atomic import atomic_path

logger = logging.getLogger(__name__)

ANN_MIN_ROWS = 20_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256
EXACT_FILTER_FRACTION = 0.2  # a filter keeping fewer rows than this fraction is searched exactly


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the k largest finite scores of a 1-D array, best first (ties: lower index)."""
    finite = np.isfinite(scores)
    n_ok = int(finite.sum())
    k = min(k, n_ok)
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(len(scores))
    part = part[np.isfinite(scores[part])]
    order = np.lexsort((part, -scores[part]))
    rows = part[order][:k]
    return rows.astype(np.int64), scores[rows].astype(np.float32)


class DenseIndex:
    """Inner-product search over (n, dim) normalised float32 vectors."""

    def __init__(self, vectors: np.ndarray, cache_dir: Path | None = None, key: str = "", backend: str = "auto"):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # (n, dim)
        self.backend = self._choose(backend)
        self._hnsw: Any = None
        if self.backend == "hnsw":
            self._hnsw = self._load_or_build(cache_dir, key)

    def __len__(self) -> int:
        return len(self.vectors)

    def _choose(self, backend: str) -> str:
        if backend not in ("auto", "exact", "hnsw"):
            from ragtune.errors import ConfigError

            raise ConfigError(f"unknown dense backend {backend!r}: use 'auto', 'exact' or 'hnsw'")
        if backend == "exact" or (backend == "auto" and len(self.vectors) < ANN_MIN_ROWS):
            return "exact"
        try:
            import faiss  # noqa: F401
        except ImportError:
            if backend == "hnsw":
                from ragtune.errors import MissingExtraError

                raise MissingExtraError("faiss-cpu", "ann") from None
            logger.warning("faiss is not installed: exact dense search over %d rows (slower)", len(self.vectors))
            return "exact"
        return "hnsw"

    def _load_or_build(self, cache_dir: Path | None, key: str) -> Any:
        import faiss

        path = Path(cache_dir) / f"{key}-m{HNSW_M}.faiss" if cache_dir and key else None
        if path is not None and path.is_file():
            try:
                index = faiss.read_index(str(path))
                if index.ntotal == len(self.vectors):
                    index.hnsw.efSearch = HNSW_EF_SEARCH
                    return index
            except RuntimeError as exc:  # a damaged cache file is rebuilt
                logger.warning("ignoring unreadable ANN cache %s: %s", path, exc)
        index = build_hnsw(self.vectors)
        if path is not None:
            try:
                with atomic_path(path) as tmp:
                    faiss.write_index(index, str(tmp))
                for old in path.parent.glob("*.faiss"):  # one cache per folder: the current state's
                    if old != path:
                        old.unlink(missing_ok=True)
            except OSError as exc:  # a read-only index folder still works, just without the cache
                logger.warning("could not cache the ANN graph at %s: %s", path, exc)
        return index

    def search(self, queries: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top-k (rows, scores) per query vector; mask (n,) bool restricts the rows before ranking."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)  # (nq, dim)
        n = len(self.vectors)
        if n == 0 or k <= 0:
            return [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in range(len(queries))]
        if mask is not None:
            allowed = np.flatnonzero(mask)
            if len(allowed) == 0:
                return [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in range(len(queries))]
            if self.backend == "exact" or len(allowed) < EXACT_FILTER_FRACTION * n:
                return self._exact_subset(queries, k, allowed)
            return self._hnsw_search(queries, k, allowed)
        if self.backend == "exact":
            return self._exact(queries, k)
        return self._hnsw_search(queries, k, None)

    def _exact(self, queries: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        scores = queries @ self.vectors.T  # (nq, n)
        return [top_k_rows(row, k) for row in scores]

    def _exact_subset(self, queries: np.ndarray, k: int, allowed: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        scores = queries @ self.vectors[allowed].T  # (nq, n_allowed)
        out = []
        for row in scores:
            idx, vals = top_k_rows(row, k)
            out.append((allowed[idx], vals))
        return out

    def _hnsw_search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
        import faiss

        k_eff = min(k, len(self.vectors) if allowed is None else len(allowed))
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(HNSW_EF_SEARCH, k_eff)
        if allowed is not None:
            bitmap = np.packbits(np.isin(np.arange(len(self.vectors)), allowed), bitorder="little")
            params.sel = faiss.IDSelectorBitmap(len(self.vectors), faiss.swig_ptr(bitmap))
        scores, rows = self._hnsw.search(queries, k_eff, params=params)
        out = []
        for s_row, r_row in zip(scores, rows):
            keep = r_row >= 0
            out.append((r_row[keep].astype(np.int64), s_row[keep].astype(np.float32)))
        return out


def build_hnsw(vectors: np.ndarray) -> Any:
    """An inner-product HNSW graph over vectors (faiss IndexHNSWFlat)."""
    import faiss

    logger.info("building HNSW graph over %d vectors", len(vectors))
    index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    index.hnsw.efSearch = HNSW_EF_SEARCH
    return index
