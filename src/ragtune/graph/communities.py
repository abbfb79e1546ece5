"""Communities of the entity graph (Louvain, networkx) and their extractive summaries, cached in the index.

A summary is built from the graph alone (no LLM): the community's most connected entities, and the few
sentences of its supporting chunks that mention the most of its members. graph-global retrieval ranks these
summaries against the query and returns the chunks that support the best communities.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.errors import MissingExtraError
from ragtune.text import split_clauses
from ragtune.index.manifest import write_bytes_atomic

logger = logging.getLogger(__name__)

SUMMARY_SENTENCES = 3
SUMMARY_ENTITIES = 12
MIN_SIZE = 2


@dataclass(frozen=True)
class Community:
    """A Louvain community: its member entity ids, top names, supporting chunk ids and extractive summary."""

    community_id: int
    entities: tuple[int, ...]
    top_names: tuple[str, ...]
    chunk_ids: tuple[str, ...]
    summary: str

    @property
    def text(self) -> str:
        """What retrieval matches the query against: names and summary sentences."""
        return "; ".join(self.top_names) + ". " + self.summary


def detect_communities(graph: Any, seed: int = 0, resolution: float = 1.0) -> list[list[int]]:
    """Louvain communities (networkx) of the entity graph's weighted edges, largest first; singletons dropped."""
    try:
        import networkx as nx
    except ImportError as exc:
        raise MissingExtraError("networkx", "graph") from exc

    adjacency = graph.adjacency.tocoo()
    g = nx.Graph()
    g.add_nodes_from(range(graph.n_entities))
    g.add_weighted_edges_from(
        (int(a), int(b), float(w)) for a, b, w in zip(adjacency.row, adjacency.col, adjacency.data) if a < b
    )
    if g.number_of_edges() == 0:
        return []
    found = nx.community.louvain_communities(g, weight="weight", resolution=resolution, seed=seed)
    groups = [sorted(c) for c in found if len(c) >= MIN_SIZE]
    return sorted(groups, key=lambda c: (-len(c), c[0]))


def summarise_community(graph: Any, chunks: list[Any], community_id: int, members: list[int]) -> Community:
    """Extractive summary: top entities by in-community edge weight, then the sentences naming most members."""
    member_set = set(members)
    strength = {}
    for e in members:
        start, end = graph.adjacency.indptr[e], graph.adjacency.indptr[e + 1]
        cols, data = graph.adjacency.indices[start:end], graph.adjacency.data[start:end]
        strength[e] = float(sum(w for c, w in zip(cols, data) if int(c) in member_set))
    ranked = sorted(members, key=lambda e: (-strength[e], graph.keys[e]))
    top_names = tuple(graph.names[e] for e in ranked[:SUMMARY_ENTITIES])
    rows = sorted({r for e in members for r in graph.supporting_rows(e)})
    lowered = [(graph.names[e].lower(), e) for e in ranked[: SUMMARY_ENTITIES * 2]]
    scored: list[tuple[int, int, str]] = []
    for row in rows:
        for sentence in split_clauses(chunks[row].text):
            low = sentence.lower()
            hits = sum(1 for name, _e in lowered if name in low)
            if hits:
                scored.append((hits, -len(sentence), sentence))
    scored.sort(reverse=True)
    summary, seen = [], set()
    for _hits, _neg, sentence in scored:
        if sentence not in seen:
            summary.append(sentence)
            seen.add(sentence)
        if len(summary) >= SUMMARY_SENTENCES:
            break
    return Community(community_id, tuple(members), top_names, tuple(chunks[r].chunk_id for r in rows), " ".join(summary))


def load_communities(index_dir: Path, state: Any, graph: Any, seed: int = 0, cache: bool = True) -> list[Community]:
    """Communities of the graph, cached as graph/communities-<content key>.json (written atomically; read but not
    written with cache=False)."""
    from ragtune.graph.store import graph_dir

    path = graph_dir(index_dir) / f"communities-{graph.content_key}.json" if graph.content_key else None
    if path is not None and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            out = [Community(d["community_id"], tuple(d["entities"]), tuple(d["top_names"]), tuple(d["chunk_ids"]),
                             d["summary"]) for d in data["communities"]]
            if all(e < graph.n_entities for c in out for e in c.entities):
                return out
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("community cache %s unreadable, recomputing: %s", path, exc)
    groups = detect_communities(graph, seed=seed)
    out = [summarise_community(graph, state.chunks, i, members) for i, members in enumerate(groups)]
    if cache and path is not None and not graph.content_key.startswith("mem-") and path.parent.is_dir():
        try:
            payload = {"seed": seed, "communities": [asdict(c) for c in out]}
            write_bytes_atomic(path, json.dumps(payload, ensure_ascii=False).encode("utf-8"))
        except OSError as exc:
            logger.warning("could not cache communities at %s: %s", path, exc)
    return out


def community_chunk_scores(graph: Any, communities: list[Community], relevance: np.ndarray) -> np.ndarray:
    """(n_chunks,) score = sum over communities of relevance × the idf share of the chunk's entities in it."""
    scores = np.zeros(graph.n_chunks, dtype=np.float32)
    total = np.asarray(graph.incidence @ graph.idf).ravel()  # (n_chunks,) idf mass of each chunk
    for community, rel in zip(communities, relevance):
        if rel <= 0:
            continue
        member = np.zeros(graph.n_entities, dtype=np.float32)
        member[list(community.entities)] = graph.idf[list(community.entities)]
        share = np.divide(graph.incidence @ member, total, out=np.zeros_like(total), where=total > 0)
        scores += float(rel) * share.astype(np.float32)
    return scores
