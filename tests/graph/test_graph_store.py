"""The graph inside the index folder: built on first use, updated on add/replace/delete, crash-safe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig
from ragtune.graph import store as gs
from ragtune.graph.communities import detect_communities, load_communities
from ragtune.graph.entity_graph import EntityGraph
from ragtune.graph.extract import Mention
from ragtune.index import Index
from ragtune.types import Document

CONFIG = IndexConfig(embed=EmbedConfig(model="hash:64"), chunk=ChunkConfig(chunk_tokens=64, overlap_tokens=8))
DOCS = [
    Document("station", "Lantern Point Field Station opened in 2011. It is operated by the Kelp Ecology Team."),
    Document("kelp", "The Kelp Ecology Team is led by Rafferty Dunmore. Dunmore is a scientific diver."),
    Document("ship", "The RV Pelling Gull carries the Tern Census counters to Skerry Head."),
]


def entity_names(index: Index) -> set[str]:
    _state, graph = gs.load_graph(index)
    return set(graph.keys)


@pytest.fixture
def index(tmp_path: Path) -> Index:
    ix = Index.create(tmp_path / "ix", CONFIG)
    ix.add_documents(DOCS)
    return ix


def test_graph_is_built_on_first_use_and_stored_in_the_index(index: Index) -> None:
    assert not gs.graph_exists(index.path)
    state, graph = gs.load_graph(index)
    assert gs.graph_exists(index.path)
    manifest = gs.read_graph_manifest(index.path)
    assert set(manifest.documents) == {"station", "kelp", "ship"}
    assert manifest.generation == index.generation
    assert {"lantern point field station", "kelp ecology team", "rafferty dunmore", "rv pelling gull"} <= set(graph.keys)
    # every node keeps the chunks that support it; "Dunmore" merged into the full name within its document
    kelp_team = graph.entity_id("kelp ecology team")
    assert {state.chunks[r].doc_id for r in graph.supporting_rows(kelp_team)} == {"station", "kelp"}
    dunmore = graph.entity_id("rafferty dunmore")
    assert graph.entity_id("dunmore") is None and len(graph.supporting_rows(dunmore)) == 1
    # edges: co-mentioned in one sentence, with the supporting chunk
    neighbours = {n.key: n for n in graph.neighbours(kelp_team)}
    assert "rafferty dunmore" in neighbours and "lantern point field station" in neighbours
    assert [state.chunks[r].doc_id for r in neighbours["rafferty dunmore"].chunk_rows] == ["kelp"]
    files = list((gs.graph_dir(index.path) / gs.PARTS).iterdir())
    assert len(files) == 1 and files[0].suffix == ".jsonl"


def test_add_replace_delete_update_the_graph_incrementally(index: Index) -> None:
    gs.load_graph(index)
    first_part = gs.read_graph_manifest(index.path).documents["station"]["part"]

    index.add_documents([Document("archive", "The Cold Archive is managed by the Sediment Dynamics Group.")])
    manifest = gs.read_graph_manifest(index.path)  # the commit hook already updated it
    assert manifest.generation == index.generation
    assert manifest.documents["station"]["part"] == first_part  # old documents were not re-extracted
    assert manifest.documents["archive"]["part"] != first_part
    assert "cold archive" in entity_names(index)

    index.add_documents([Document("ship", "The RV Marram Tern carries visitors to Skerry Head.")])  # replace
    names = entity_names(index)
    assert "rv marram tern" in names and "rv pelling gull" not in names and "tern census" not in names

    index.delete_documents(["archive"])
    manifest = gs.read_graph_manifest(index.path)
    assert "archive" not in manifest.documents and manifest.generation == index.generation
    assert "cold archive" not in entity_names(index)
    live_parts = {e["part"] for e in manifest.documents.values()}
    on_disk = {p.name.split(".")[0] for p in (gs.graph_dir(index.path) / gs.PARTS).iterdir()}
    assert on_disk == live_parts == set(manifest.parts)  # unreferenced parts were collected


def test_index_without_a_graph_does_not_grow_one_on_commit(index: Index) -> None:
    index.add_documents([Document("extra", "Quennock Island has a harbour.")])
    assert not gs.graph_exists(index.path)


def test_failed_graph_commit_leaves_the_index_committed_and_the_graph_catches_up(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    gs.load_graph(index)
    generation = index.generation

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(gs, "write_graph_manifest", boom)
    index.add_documents([Document("archive", "The Cold Archive is managed by the Sediment Dynamics Group.")])
    assert index.generation == generation + 1  # the index commit stands
    assert gs.read_graph_manifest(index.path).generation == generation  # the graph lags
    monkeypatch.undo()
    reopened = Index.open(index.path)
    assert "cold archive" in entity_names(reopened)
    assert gs.read_graph_manifest(index.path).generation == reopened.generation


def test_process_killed_between_index_and_graph_commit(index: Index, tmp_path: Path) -> None:
    gs.load_graph(index)
    generation = index.generation
    script = f"""
import os
from ragtune.index import Index, on_commit
from ragtune.progress import set_progress
from ragtune.types import Document
set_progress(False)
on_commit(lambda index: os._exit(9))  # die right after the index manifest is replaced, before any graph hook
from ragtune.graph import follow_index_commits
follow_index_commits()  # the graph subscribes after the killer: its hook never runs
Index.open({str(index.path)!r}).add_documents([Document("late", "The Deepwell Tank opened in 1998.")])
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    reopened = Index.open(index.path)
    assert reopened.generation == generation + 1 and "late" in {d.doc_id for d in reopened.documents()}
    assert gs.read_graph_manifest(index.path).generation == generation
    assert "deepwell tank" in entity_names(reopened)
    assert gs.read_graph_manifest(index.path).generation == generation + 1


def test_orphan_part_from_a_crashed_sync_is_collected(index: Index) -> None:
    gs.load_graph(index)
    orphan = gs.graph_dir(index.path) / gs.PARTS / "part-000099-deadbeef.jsonl"
    orphan.write_text("{}\n")
    index.add_documents([Document("extra", "Quennock Island has a harbour.")])
    assert not orphan.exists()
    assert "quennock island" in entity_names(index)


def test_read_only_fallback_extracts_in_memory(index: Index) -> None:
    records = gs.load_records(index, persist=False)
    assert not gs.graph_exists(index.path)
    assert len(records.mentions) == len(index.chunks())
    assert any(m.key == "rv pelling gull" for ms in records.mentions for m in ms)


def test_unreadable_graph_manifest_of_another_version_is_rebuilt(index: Index) -> None:
    gs.load_graph(index)
    path = gs.graph_dir(index.path) / gs.GRAPH_MANIFEST
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "format_version": 999}))
    reopened = Index.open(index.path)
    assert "rv pelling gull" in entity_names(reopened)
    assert json.loads(path.read_text())["format_version"] == gs.FORMAT_VERSION


def _m(*keys: str) -> list[Mention]:
    return [Mention(k, k.title(), 0) for k in keys]


def test_hub_nodes_are_cut_from_propagation_and_fan_out_is_capped() -> None:
    mentions = [_m("hub", f"e{i}") for i in range(30)]
    graph = EntityGraph.build(mentions, hub_df=10, max_edges=4)
    hub = graph.entity_id("hub")
    assert graph.df[hub] == 30
    assert graph.adjacency[hub].nnz == 0  # a hub takes no part in the walk
    assert len(graph.supporting_rows(hub)) == 30  # but keeps its chunks
    star = EntityGraph.build([_m("centre", *[f"leaf{i}" for i in range(20)])], hub_df=100, max_edges=4)
    uncapped = EntityGraph.build([_m("centre", *[f"leaf{i}" for i in range(20)])], hub_df=100, max_edges=100)
    assert uncapped.n_edges == 21 * 20 // 2  # one sentence: a clique
    assert star.n_edges <= 4 * 21  # every kept edge was among the 4 strongest of one of its ends


def test_personalised_pagerank_reaches_two_hops_and_stays_a_distribution() -> None:
    graph = EntityGraph.build([_m("a", "b"), _m("b", "c"), _m("x", "y")], hub_df=100)
    seeds = np.zeros(graph.n_entities, dtype=np.float32)
    seeds[graph.entity_id("a")] = 1.0
    mass = graph.personalised_pagerank(seeds)
    assert mass.sum() == pytest.approx(1.0, abs=1e-4)
    a, b, c, x = (graph.entity_id(k) for k in "abcx")
    assert mass[a] > mass[b] > mass[c] > 0 and mass[x] == 0
    scores = graph.chunk_scores(mass)
    assert scores[0] > scores[1] > scores[2] == 0


def test_communities_split_two_cliques_and_are_cached(index: Index) -> None:
    graph = EntityGraph.build([_m("a", "b", "c"), _m("a", "b"), _m("x", "y", "z"), _m("y", "z")], hub_df=100)
    groups = [{graph.keys[e] for e in c} for c in detect_communities(graph)]
    assert sorted(map(sorted, groups)) == [["a", "b", "c"], ["x", "y", "z"]]
    state, real = gs.load_graph(index)
    communities = load_communities(index.path, state, real)
    assert communities and all(c.summary and c.top_names for c in communities)
    cache = gs.graph_dir(index.path) / f"communities-{real.content_key}.json"
    assert cache.is_file()
    assert load_communities(index.path, state, real) == communities
