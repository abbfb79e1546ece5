"""Looking at the graph: an overview, one entity's neighbourhood (JSON-able dicts), and an HTML view of it."""

from __future__ import annotations

import difflib
import html
import math
from typing import Any

from ragtune.errors import InputError
from ragtune.graph.extract import normalize_name


def find_entity(graph: Any, name: str) -> int:
    """Node id for a name (normalised, aliases followed, else the closest name); InputError with suggestions."""
    entity = graph.entity_id(normalize_name(name))
    if entity is not None:
        return entity
    close = difflib.get_close_matches(normalize_name(name), graph.keys, n=5, cutoff=0.75)
    if len(close) == 1:
        return graph.key_id[close[0]]
    hint = f"; did you mean {', '.join(repr(graph.names[graph.key_id[c]]) for c in close)}?" if close else ""
    raise InputError(f"no entity {name!r} in the graph{hint}")


def overview(index: Any, top: int = 20, communities: int = 5, persist: bool = True) -> dict[str, Any]:
    """Counts, the most mentioned entities, and the largest communities with their summaries (persist=False:
    nothing is written, see load_graph)."""
    import numpy as np

    from ragtune.graph.communities import load_communities
    from ragtune.graph.store import load_graph

    state, graph = load_graph(index, persist=persist)
    order = np.argsort(-graph.df, kind="stable")[:top]
    found = load_communities(index.path, state, graph, cache=persist)
    return {
        "chunks": graph.n_chunks,
        "entities": graph.n_entities,
        "edges": graph.n_edges,
        "hub_df": graph.hub_df,
        "chunks_without_entities": int((np.diff(graph.incidence.indptr) == 0).sum()),
        "top_entities": [{"name": graph.names[e], "key": graph.keys[e], "chunks": int(graph.df[e]),
                          "hub": bool(graph.df[e] > graph.hub_df)} for e in order],
        "communities": [{"id": c.community_id, "size": len(c.entities), "top": list(c.top_names[:8]),
                         "summary": c.summary} for c in found[:communities]],
    }


def neighbourhood(index: Any, name: str, limit: int = 20, persist: bool = True) -> dict[str, Any]:
    """One entity: its supporting chunks and strongest neighbours, each edge with its supporting chunk ids
    (persist=False: nothing is written, see load_graph)."""
    from ragtune.graph.store import load_graph

    state, graph = load_graph(index, persist=persist)
    entity = find_entity(graph, name)
    return {
        "entity": graph.names[entity],
        "key": graph.keys[entity],
        "hub": bool(graph.df[entity] > graph.hub_df),
        "chunks": [state.chunks[r].chunk_id for r in graph.supporting_rows(entity)],
        "neighbours": [
            {"name": n.name, "key": n.key, "weight": round(n.weight, 4),
             "chunks": [state.chunks[r].chunk_id for r in n.chunk_rows]}
            for n in graph.neighbours(entity, limit=limit)
        ],
    }


def neighbourhood_html(data: dict[str, Any]) -> str:
    """A self-contained HTML page: the entity in the centre, neighbours on a circle (edge width = weight)."""
    size, centre, radius = 640, 320, 240
    neighbours = data["neighbours"]
    top = max((n["weight"] for n in neighbours), default=1.0) or 1.0
    parts = []
    for i, n in enumerate(neighbours):
        angle = 2 * math.pi * i / max(len(neighbours), 1)
        x, y = centre + radius * math.cos(angle), centre + radius * math.sin(angle)
        width = 1 + 5 * n["weight"] / top
        title = html.escape(f"{n['name']} — weight {n['weight']}; chunks: {', '.join(n['chunks'])}")
        parts.append(f'<line x1="{centre}" y1="{centre}" x2="{x:.0f}" y2="{y:.0f}" stroke="#8aa" '
                     f'stroke-width="{width:.1f}"><title>{title}</title></line>')
        parts.append(f'<circle cx="{x:.0f}" cy="{y:.0f}" r="6" fill="#4a7"/><text x="{x:.0f}" y="{y - 10:.0f}" '
                     f'text-anchor="middle" font-size="12">{html.escape(n["name"])}</text>')
    parts.append(f'<circle cx="{centre}" cy="{centre}" r="10" fill="#c53"/><text x="{centre}" y="{centre - 16}" '
                 f'text-anchor="middle" font-weight="bold">{html.escape(data["entity"])}</text>')
    rows = "".join(
        f"<tr><td>{html.escape(n['name'])}</td><td>{n['weight']}</td><td>{html.escape(', '.join(n['chunks']))}</td></tr>"
        for n in neighbours
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>ragtune graph: "
        f"{html.escape(data['entity'])}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #ddd}</style></head><body>"
        f"<h1>{html.escape(data['entity'])}</h1><p>Mentioned in {len(data['chunks'])} chunk(s): "
        f"{html.escape(', '.join(data['chunks']))}</p>"
        f"<svg width='{size}' height='{size}' viewBox='0 0 {size} {size}'>{''.join(parts)}</svg>"
        f"<table><tr><th>neighbour</th><th>weight</th><th>supporting chunks</th></tr>{rows}</table></body></html>\n"
    )
