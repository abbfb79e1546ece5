"""The in-memory entity graph: entities, chunk incidence, co-occurrence edges and personalised PageRank.

Built from mentions per chunk row (see ragtune.graph.store). Nodes are merged entity keys; an edge joins two
entities mentioned in one sentence (weight 1) or one chunk (weight 0.25), scaled by 1/sqrt(df_a * df_b) so
that frequent entities do not dominate. Hub nodes (in more than `hub_df` chunks) keep their chunk links but
take no part in propagation, and each node keeps only its `max_edges` strongest edges.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ragtune.graph.extract import Mention, alias_map

SENTENCE_WEIGHT = 1.0
CHUNK_WEIGHT = 0.25
MAX_EDGES = 32


def default_hub_df(n_chunks: int) -> int:
    """Chunk frequency above which an entity is a hub: 5% of chunks, at least 20."""
    return max(20, int(0.05 * n_chunks))


@dataclass(frozen=True)
class Neighbour:
    """An entity adjacent to another, with the edge weight and the chunk rows supporting the edge."""

    name: str
    key: str
    weight: float
    chunk_rows: tuple[int, ...]


class EntityGraph:
    """Entities × chunks incidence plus an entity co-occurrence graph (scipy sparse, float32)."""

    def __init__(self, keys: list[str], names: list[str], incidence: Any, adjacency: Any, aliases: dict[str, str],
                 hub_df: int, content_key: str = ""):
        from scipy import sparse

        self.keys = keys  # (n_entities,) merge keys
        self.names = names  # display names (most frequent surface form)
        self.key_id = {k: i for i, k in enumerate(keys)}
        self.aliases = aliases
        self.incidence = incidence.tocsr()  # (n_chunks, n_entities) 1 where the chunk mentions the entity
        self.adjacency = adjacency.tocsr()  # (n_entities, n_entities) symmetric association weights
        self.hub_df = hub_df
        self.content_key = content_key
        self.df = np.asarray(self.incidence.sum(axis=0)).ravel().astype(np.float32)  # (n_entities,)
        n = max(self.incidence.shape[0], 1)
        self.idf = np.log1p(n / np.maximum(self.df, 1.0)).astype(np.float32)
        out_weight = np.asarray(self.adjacency.sum(axis=1)).ravel()
        inv = np.divide(1.0, out_weight, out=np.zeros_like(out_weight), where=out_weight > 0)
        self.transition = sparse.diags(inv.astype(np.float32)) @ self.adjacency  # row-stochastic where edges exist
        self.dangling = out_weight == 0
        self.entity_chunks = self.incidence.T.tocsr()  # (n_entities, n_chunks)

    @property
    def n_entities(self) -> int:
        return len(self.keys)

    @property
    def n_chunks(self) -> int:
        return self.incidence.shape[0]

    @property
    def n_edges(self) -> int:
        return int(self.adjacency.nnz // 2)

    @classmethod
    def build(cls, mentions: list[list[Mention]], hub_df: int | None = None, max_edges: int = MAX_EDGES,
              content_key: str = "") -> EntityGraph:
        """Build from mentions per chunk row (rows align with the index state's chunks)."""
        from scipy import sparse

        n_chunks = len(mentions)
        hub_df = hub_df or default_hub_df(n_chunks)
        raw_keys = Counter(m.key for ms in mentions for m in ms)
        aliases = alias_map(raw_keys)
        surfaces: dict[str, Counter] = {}
        key_id: dict[str, int] = {}
        chunk_rows, chunk_cols, sent_rows, sent_cols = [], [], [], []
        n_sentences = 0
        for row, ms in enumerate(mentions):
            seen_sent: dict[int, int] = {}
            for m in ms:
                key = aliases.get(m.key, m.key)
                col = key_id.setdefault(key, len(key_id))
                surfaces.setdefault(key, Counter())[m.surface] += 1
                chunk_rows.append(row)
                chunk_cols.append(col)
                if m.sentence not in seen_sent:
                    seen_sent[m.sentence] = n_sentences
                    n_sentences += 1
                sent_rows.append(seen_sent[m.sentence])
                sent_cols.append(col)
        keys = list(key_id)
        names = [surfaces[k].most_common(1)[0][0] for k in keys]
        n_ent = len(keys)
        ones = np.ones(len(chunk_rows), dtype=np.float32)
        incidence = sparse.csr_matrix((ones, (chunk_rows, chunk_cols)), shape=(n_chunks, n_ent), dtype=np.float32)
        incidence.data[:] = 1.0  # duplicates summed by the constructor: make it binary
        by_sentence = sparse.csr_matrix((np.ones(len(sent_rows), dtype=np.float32), (sent_rows, sent_cols)),
                                        shape=(n_sentences, n_ent), dtype=np.float32)
        by_sentence.data[:] = 1.0
        co = SENTENCE_WEIGHT * (by_sentence.T @ by_sentence) + CHUNK_WEIGHT * (incidence.T @ incidence)
        co = sparse.csr_matrix(co)
        co.setdiag(0)
        co.eliminate_zeros()
        df = np.asarray(incidence.sum(axis=0)).ravel().astype(np.float32)
        hub = df > hub_df
        scale = np.where(hub, 0.0, 1.0 / np.sqrt(np.maximum(df, 1.0))).astype(np.float32)
        co = sparse.diags(scale) @ co @ sparse.diags(scale)  # association; hubs cut out of propagation
        co = _keep_strongest(sparse.csr_matrix(co), max_edges)
        adjacency = co.maximum(co.T)  # symmetric again after per-row pruning
        return cls(keys, names, incidence, adjacency, aliases, hub_df, content_key)

    # ---- lookups -------------------------------------------------------------------------------------------
    def entity_id(self, key: str) -> int | None:
        """Node id of a merge key (aliases followed), or None."""
        return self.key_id.get(self.aliases.get(key, key))

    def chunk_entities(self, row: int) -> list[int]:
        """Entity ids mentioned in one chunk row."""
        start, end = self.incidence.indptr[row], self.incidence.indptr[row + 1]
        return self.incidence.indices[start:end].tolist()

    def supporting_rows(self, entity: int) -> list[int]:
        """Chunk rows that mention an entity."""
        start, end = self.entity_chunks.indptr[entity], self.entity_chunks.indptr[entity + 1]
        return self.entity_chunks.indices[start:end].tolist()

    def neighbours(self, entity: int, limit: int = 20) -> list[Neighbour]:
        """Strongest neighbours of an entity, each with the chunks that support the edge (both mentioned)."""
        start, end = self.adjacency.indptr[entity], self.adjacency.indptr[entity + 1]
        cols, weights = self.adjacency.indices[start:end], self.adjacency.data[start:end]
        order = np.argsort(-weights, kind="stable")[:limit]
        mine = set(self.supporting_rows(entity))
        out = []
        for i in order:
            other = int(cols[i])
            rows = tuple(sorted(mine.intersection(self.supporting_rows(other))))
            out.append(Neighbour(self.names[other], self.keys[other], float(weights[i]), rows))
        return out

    # ---- scoring -------------------------------------------------------------------------------------------
    def personalised_pagerank(self, seeds: np.ndarray, alpha: float = 0.5, iterations: int = 20) -> np.ndarray:
        """(n_entities,) PPR mass from a seed distribution; alpha is the probability of following an edge.

        Mass at nodes without edges (and hubs) returns to the seeds, so it stays a distribution."""
        total = float(seeds.sum())
        if total <= 0:
            return np.zeros(self.n_entities, dtype=np.float32)
        p = (seeds / total).astype(np.float32)
        s = p.copy()
        step_t = self.transition.T.tocsr()
        for _ in range(iterations):
            leaked = float(s[self.dangling].sum())
            s = (1 - alpha) * p + alpha * (step_t @ s + leaked * p)
        return s

    def chunk_scores(self, entity_mass: np.ndarray) -> np.ndarray:
        """(n_chunks,) sum over a chunk's entities of mass × idf, damped by sqrt(#entities in the chunk)."""
        if self.n_entities == 0:
            return np.zeros(self.n_chunks, dtype=np.float32)
        counts = np.diff(self.incidence.indptr).astype(np.float32)
        raw = self.incidence @ (entity_mass * self.idf)
        return (raw / np.sqrt(np.maximum(counts, 1.0))).astype(np.float32)


def _keep_strongest(matrix: Any, k: int) -> Any:
    """Per row, keep the k largest entries (caps hub fan-out)."""
    from scipy import sparse

    matrix = matrix.tocsr()
    rows, cols, vals = [], [], []
    for r in range(matrix.shape[0]):
        start, end = matrix.indptr[r], matrix.indptr[r + 1]
        if end == start:
            continue
        data, idx = matrix.data[start:end], matrix.indices[start:end]
        if end - start > k:
            keep = np.argpartition(-data, k)[:k]
            data, idx = data[keep], idx[keep]
        rows.append(np.full(len(idx), r))
        cols.append(idx)
        vals.append(data)
    if not rows:
        return sparse.csr_matrix(matrix.shape, dtype=np.float32)
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=matrix.shape, dtype=np.float32)
