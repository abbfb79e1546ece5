"""Parity of EntityGraph.personalised_pagerank with networkx.pagerank(personalization=...)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from ragtune.graph.entity_graph import EntityGraph

nx = pytest.importorskip("networkx")


def _random_graph(n: int, seed: int) -> EntityGraph:
    """A weighted symmetric co-occurrence graph with isolated (dangling) entities, as the store builds them."""
    rng = np.random.default_rng(seed)
    upper = sparse.random(n, n, density=0.15, random_state=rng, format="csr", dtype=np.float32)
    upper = sparse.triu(upper, k=1)
    adjacency = (upper + upper.T).tolil()
    for isolated in (0, n // 2):  # no edges at all: their mass returns to the seeds
        adjacency[isolated, :] = 0
        adjacency[:, isolated] = 0
    incidence = sparse.identity(n, dtype=np.float32, format="csr")  # one chunk per entity; unused by PPR
    keys = [f"e{i}" for i in range(n)]
    return EntityGraph(keys, keys, incidence, adjacency.tocsr(), aliases={}, hub_df=n)


def _networkx_ppr(graph: EntityGraph, seeds: np.ndarray, alpha: float) -> np.ndarray:
    g = nx.DiGraph()
    g.add_nodes_from(range(graph.adjacency.shape[0]))
    coo = graph.adjacency.tocoo()
    g.add_weighted_edges_from(zip(coo.row.tolist(), coo.col.tolist(), coo.data.astype(float).tolist()))
    personalization = {i: float(v) for i, v in enumerate(seeds)}
    # networkx hands dangling mass to the personalization vector by default, as ragtune does
    ranks = nx.pagerank(g, alpha=alpha, personalization=personalization, weight="weight", tol=1e-12, max_iter=1000)
    return np.array([ranks[i] for i in range(len(seeds))])


@pytest.mark.parametrize(("seed", "alpha"), [(0, 0.5), (1, 0.5), (2, 0.85)])
def test_ppr_matches_networkx(seed, alpha):
    graph = _random_graph(40, seed)
    seeds = np.zeros(40, dtype=np.float32)
    seeds[[3, 7, 0]] = [2.0, 1.0, 1.0]  # one seed is dangling
    ours = graph.personalised_pagerank(seeds, alpha=alpha, iterations=200)
    ref = _networkx_ppr(graph, seeds, alpha)
    assert ours.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(ours, ref, atol=2e-6)


def test_default_twenty_iterations_are_close_at_alpha_half():
    """retrieve uses alpha 0.5 and 20 iterations: the error left is about 0.5**20 of the mass."""
    graph = _random_graph(60, 3)
    seeds = np.zeros(60, dtype=np.float32)
    seeds[5] = 1.0
    ours = graph.personalised_pagerank(seeds)
    np.testing.assert_allclose(ours, _networkx_ppr(graph, seeds, 0.5), atol=1e-5)
    assert np.argsort(-ours)[:5].tolist() == np.argsort(-_networkx_ppr(graph, seeds, 0.5))[:5].tolist()
