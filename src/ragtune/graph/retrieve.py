"""Graph retrieval modes: graph-local, graph-global and graph-hybrid, behind the Retriever protocol.

graph-local: entities linked from the query (names/aliases found in it) and from the top text hits (seed
chunks) → personalised PageRank over the entity graph (1–2 hops carry most mass at alpha 0.5) → chunks
scored by the mass of the entities they mention. This reaches the *bridge* chunk of a multi-hop question:
the second document is found through an entity it shares with the first. Chunks the graph cannot score
(no entities: empty or non-English text) follow in text-retrieval order, so the mode never returns less.
graph-global: Louvain communities with extractive summaries; summaries ranked against the query (BM25),
chunks supporting the best communities first, then the text order.
graph-hybrid: graph-local scores fused with the hybrid text ranking (score fusion: graph score scaled to 1 plus
a rank prior of the hybrid ranking), so chunks that are both connected to the question's entities and
textually relevant to it come first; on simple questions it stays close to hybrid.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from ragtune.config import RetrieveConfig
from ragtune.graph.extract import extract_chunk_mentions, normalize_name
from ragtune.retrieve.base import Filters
from ragtune.retrieve.factory import build_retriever
from ragtune.types import Hit

logger = logging.getLogger(__name__)

GRAPH_MODES = ("graph-local", "graph-global", "graph-hybrid")
SEED_CHUNKS = 3  # top text hits whose entities seed the walk
QUERY_ENTITY_WEIGHT = 2.0  # an entity named in the query counts as much as the top seed chunk's entities, twice
ALPHA = 0.5
TEXT_WEIGHT = 1.0
TEXT_DECAY = 10.0
TOP_COMMUNITIES = 3
_TOKEN = re.compile(r"[^\W_][\w'’\-]*", re.UNICODE)


def link_query_entities(graph: Any, query: str, max_ngram: int = 6) -> list[int]:
    """Entity ids named in a query: its capitalised mentions, and any word n-gram equal to an entity key."""
    found: dict[int, None] = {}
    for mention in extract_chunk_mentions([query])[0]:
        entity = graph.entity_id(mention.key)
        if entity is not None:
            found[entity] = None
    words = [normalize_name(t) for t in _TOKEN.findall(query)]
    words = [w for w in words if w]
    for n in range(max_ngram, 0, -1):
        for i in range(len(words) - n + 1):
            gram = " ".join(words[i : i + n])
            entity = graph.entity_id(gram)
            if entity is not None and (n > 1 or len(gram) > 3 or gram.isupper()):
                found[entity] = None
    return list(found)


def graph_local_scores(graph: Any, query: str, text_rows: list[int]) -> np.ndarray:
    """(n_chunks,) graph-local score of every chunk row for one query, given its text ranking (rows)."""
    seeds = np.zeros(graph.n_entities, dtype=np.float32)
    if graph.n_entities == 0:
        return np.zeros(graph.n_chunks, dtype=np.float32)
    for entity in link_query_entities(graph, query):
        seeds[entity] += QUERY_ENTITY_WEIGHT * graph.idf[entity]
    for rank, row in enumerate(text_rows[:SEED_CHUNKS]):
        entities = graph.chunk_entities(row)
        if entities:
            seeds[entities] += graph.idf[entities] / (rank + 1) / np.sqrt(len(entities))
    mass = graph.personalised_pagerank(seeds, alpha=ALPHA)
    return graph.chunk_scores(mass)


def blend_with_text(graph_scores: np.ndarray, text_rows: list[int]) -> np.ndarray:
    """graph score (scaled to max 1) + TEXT_WEIGHT × a text-rank prior (1 at rank 0, 0.5 at rank TEXT_DECAY).

    The graph alone ranks every chunk that shares entities with the seeds alike; the text prior keeps the
    chunks that also answer the rest of the question (the bridge chunk's own relation) on top."""
    top = float(graph_scores.max()) if graph_scores.size else 0.0
    out = graph_scores / top if top > 0 else np.zeros_like(graph_scores)
    if text_rows:
        prior = TEXT_DECAY / (TEXT_DECAY + np.arange(len(text_rows), dtype=np.float32))
        out = out.copy()
        out[np.asarray(text_rows)] += TEXT_WEIGHT * prior
    return out


def _ranking(scores: np.ndarray, mask: np.ndarray | None, depth: int) -> list[int]:
    scores = scores if mask is None else np.where(mask, scores, 0.0)
    positive = np.flatnonzero(scores > 0)
    order = positive[np.argsort(-scores[positive], kind="stable")]
    return order[:depth].tolist()


def _fill(primary: list[int], scores: dict[int, float], fallback: list[int], k: int) -> list[tuple[int, float]]:
    """primary rows (with their scores) then fallback rows not yet present (score 0), up to k."""
    out = [(r, scores[r]) for r in primary[:k]]
    seen = {r for r, _ in out}
    for row in fallback:
        if len(out) >= k:
            break
        if row not in seen:
            out.append((row, 0.0))
            seen.add(row)
    return out


class GraphRetriever:
    """One of the graph modes over an Index (see module doc); `mode` in GRAPH_MODES."""

    def __init__(self, index: Any, config: RetrieveConfig = RetrieveConfig(), mode: str = "graph-hybrid"):
        from ragtune.errors import ConfigError

        if mode not in GRAPH_MODES:
            raise ConfigError(f"unknown graph mode {mode!r}: choose one of {', '.join(GRAPH_MODES)}")
        self.index = index
        self.config = config
        self.mode = mode
        self.text = build_retriever(index, config.model_copy(update={"mode": "hybrid"}))  # folder or engine
        self._global: tuple[str, list[Any], Any] | None = None  # (graph content key, communities, their BM25)

    def retrieve(self, queries: list[str], k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        """Top-k hits per query, best first."""
        from ragtune.graph.store import load_graph

        if not queries:
            return []
        state, graph = load_graph(self.index)
        depth = max(self.config.candidates, k)
        text_hits = self.text.retrieve(list(queries), k=depth, filters=filters)
        mask = state.metadata_index().mask(filters)
        out = []
        communities, community_rel = self._community_relevance(state, graph, queries) if self.mode == "graph-global" \
            else (None, None)
        for qi, (query, hits) in enumerate(zip(queries, text_hits)):
            text_rows = [state.row_of[h.chunk.chunk_id] for h in hits if h.chunk.chunk_id in state.row_of]
            if self.mode == "graph-global":
                from ragtune.graph.communities import community_chunk_scores

                rel = community_rel[qi] if community_rel is not None else np.zeros(0)
                scores = community_chunk_scores(graph, communities or [], rel) if len(rel) else np.zeros(graph.n_chunks)
                # inside the chosen communities, chunks that also match the question's text come first
                scores = np.where(scores > 0, blend_with_text(scores, text_rows), 0.0)
            elif self.mode == "graph-local":
                scores = graph_local_scores(graph, query, text_rows)
            else:
                scores = blend_with_text(graph_local_scores(graph, query, text_rows), text_rows)
            graph_rows = _ranking(scores, mask, depth)
            fused = _fill(graph_rows, {r: float(scores[r]) for r in graph_rows}, text_rows, k)
            out.append([Hit(chunk=state.chunks[row], score=float(s), rank=i) for i, (row, s) in enumerate(fused)])
        return out

    def _community_relevance(self, state: Any, graph: Any, queries: list[str]) -> tuple[list[Any], np.ndarray | None]:
        """Communities and (n_queries, n_communities) BM25 relevance of their summaries, top few per query kept."""
        from ragtune.graph.communities import load_communities
        from ragtune.index.bm25 import BM25Index

        if self._global is None or self._global[0] != graph.content_key or graph.content_key.startswith("mem-"):
            communities = load_communities(self.index.path, state, graph)
            bm25 = BM25Index([c.text for c in communities], self.index.config.bm25) if communities else None
            self._global = (graph.content_key, communities, bm25)
        _key, communities, bm25 = self._global
        if bm25 is None:
            return communities, None
        scores = np.asarray(bm25.scores(list(queries)), dtype=np.float32)
        if scores.shape[1] > TOP_COMMUNITIES:
            cut = -np.sort(-scores, axis=1)[:, TOP_COMMUNITIES - 1 : TOP_COMMUNITIES]
            scores = np.where(scores >= cut, scores, 0.0)
        return communities, scores
