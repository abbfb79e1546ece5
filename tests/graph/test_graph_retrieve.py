"""The three graph modes on a tiny corpus with a known two-hop answer path; fallbacks; factory and CLI wiring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig, RetrieveConfig
from ragtune.graph.retrieve import GRAPH_MODES, GraphRetriever, link_query_entities
from ragtune.graph.store import load_graph
from ragtune.index import Index
from ragtune.retrieve import MODES, Retriever, build_retriever, open_retriever
from ragtune.types import Document

CONFIG = IndexConfig(embed=EmbedConfig(model="hash:128"), chunk=ChunkConfig(chunk_tokens=64, overlap_tokens=8))
# Two hops: the question names the ship; the ship's document names its operator (Vessel Operations Team),
# whose own document names the leader. Distractors share the question's words but not its entities.
DOCS = [
    Document("ship", "The RV Pelling Gull is the research ship of the institute. "
                     "The RV Pelling Gull is crewed and operated by the Vessel Operations Team.", title="RV Pelling Gull",
             metadata={"groups": ["fleet"]}),
    Document("vessel-team", "Vessel Operations Team. The Vessel Operations Team is led by Senna Hollick. "
                            "Bookings open every Monday.", title="Vessel Operations Team", metadata={"groups": ["teams"]}),
    Document("kelp-team", "Kelp Ecology Team. The team that dives is led by Rafferty Dunmore, who leads the divers.",
             title="Kelp Ecology Team", metadata={"groups": ["teams"]}),
    Document("outreach", "Community Outreach. Who leads the open day? The outreach team leads school visits and "
                         "the ship tours.", title="Community Outreach", metadata={"groups": ["teams"]}),
    Document("sediment", "Sediment Dynamics Group. The group is led by Maren Okonkwo-Lisle and runs Project SILTLINE "
                         "from the Cold Archive.", title="Sediment Dynamics Group", metadata={"groups": ["teams"]}),
    Document("archive", "The Cold Archive stores sediment cores from Project SILTLINE at minus twenty degrees.",
             title="Cold Archive", metadata={"groups": ["facilities"]}),
    Document("leave", "Employees get thirty days of paid leave per year.", title="Leave policy",
             metadata={"groups": ["hr"]}),
]
QUESTION = "Who leads the team that operates the RV Pelling Gull?"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    ix = Index.create(tmp_path_factory.mktemp("graph") / "ix", CONFIG)
    ix.add_documents(DOCS)
    return ix


def test_graph_modes_are_registered_everywhere(index: Index) -> None:
    assert set(GRAPH_MODES) <= set(MODES)
    for mode in GRAPH_MODES:
        assert RetrieveConfig(mode=mode).mode == mode
        retriever = build_retriever(index, RetrieveConfig(mode=mode))
        assert isinstance(retriever, Retriever) and isinstance(retriever, GraphRetriever)
        assert isinstance(open_retriever(index, mode), GraphRetriever)


def test_query_entities_are_linked_by_name(index: Index) -> None:
    _state, graph = load_graph(index)
    linked = [graph.keys[e] for e in link_query_entities(graph, QUESTION)]
    assert linked == ["rv pelling gull"]
    lower = [graph.keys[e] for e in link_query_entities(graph, "where is the cold archive of siltline?")]
    assert sorted(lower) == ["cold archive", "siltline"]


@pytest.mark.parametrize("mode", ["graph-local", "graph-hybrid"])
def test_local_modes_follow_the_bridge_entity(index: Index, mode: str) -> None:
    hits = open_retriever(index, mode).retrieve([QUESTION], k=2)[0]
    assert {h.chunk.doc_id for h in hits} == {"ship", "vessel-team"}
    assert [h.rank for h in hits] == [0, 1] and hits[0].score >= hits[1].score


def test_graph_hybrid_beats_hybrid_on_the_two_hop_question(index: Index) -> None:
    text = [h.chunk.doc_id for h in open_retriever(index, "hybrid").retrieve([QUESTION], k=2)[0]]
    graph = [h.chunk.doc_id for h in open_retriever(index, "graph-hybrid").retrieve([QUESTION], k=2)[0]]
    assert "vessel-team" in graph
    assert len({"ship", "vessel-team"} & set(graph)) >= len({"ship", "vessel-team"} & set(text))


def test_graph_global_ranks_the_community_of_the_question(index: Index) -> None:
    hits = open_retriever(index, "graph-global").retrieve(["sediment cores SILTLINE archive"], k=3)[0]
    assert {h.chunk.doc_id for h in hits[:2]} == {"sediment", "archive"}


@pytest.mark.parametrize("mode", GRAPH_MODES)
def test_every_mode_returns_k_ranked_hits_and_respects_filters(index: Index, mode: str) -> None:
    retriever = open_retriever(index, mode)
    hits = retriever.retrieve([QUESTION, "paid leave per year"], k=4)
    assert [len(h) for h in hits] == [4, 4]
    for ranked in hits:
        assert [h.rank for h in ranked] == list(range(4))
        assert all(a.score >= b.score for a, b in zip(ranked, ranked[1:]))
        assert len({h.chunk.chunk_id for h in ranked}) == 4
    filtered = retriever.retrieve([QUESTION], k=10, filters={"groups": "teams"})[0]
    assert filtered and {h.chunk.doc_id for h in filtered} <= {"vessel-team", "kelp-team", "outreach", "sediment"}
    assert retriever.retrieve([], k=3) == []


@pytest.mark.parametrize("mode", GRAPH_MODES)
def test_no_entities_or_non_english_falls_back_to_text_retrieval(tmp_path: Path, mode: str) -> None:
    ix = Index.create(tmp_path / "plain", CONFIG)
    ix.add_documents([
        Document("a", "employees get thirty days of paid leave per year."),
        Document("b", "connect to the vpn before opening the intranet."),
        Document("zh", "员工每年有三十天带薪假期。"),
        Document("empty-ish", "..."),
    ])
    _state, graph = load_graph(ix)
    assert graph.n_entities == 0
    got = open_retriever(ix, mode).retrieve(["paid leave days", "三十天带薪假期"], k=2)
    want = open_retriever(ix, "hybrid").retrieve(["paid leave days", "三十天带薪假期"], k=2)
    assert [[h.chunk.chunk_id for h in hs] for hs in got] == [[h.chunk.chunk_id for h in hs] for hs in want]
    assert got[0][0].chunk.doc_id == "a"


def test_cli_search_and_graph_show(index: Index, tmp_path: Path) -> None:
    from ragtune.cli import build_app

    runner, app = CliRunner(), build_app()
    found = runner.invoke(app, ["search", QUESTION, "--index", str(index.path), "-k", "2", "--mode", "graph-hybrid",
                                "--json"])
    assert found.exit_code == 0, found.output
    assert {h["doc_id"] for h in json.loads(found.output)} == {"ship", "vessel-team"}

    html = tmp_path / "view.html"
    shown = runner.invoke(app, ["graph", "show", "--index", str(index.path), "--entity", "vessel operations team",
                                "--json", "--html", str(html)])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["entity"] == "Vessel Operations Team"
    assert {"senna hollick", "rv pelling gull"} <= {n["key"] for n in data["neighbours"]}
    hollick = next(n for n in data["neighbours"] if n["key"] == "senna hollick")
    assert hollick["chunks"] == ["vessel-team#0"]
    assert "Senna Hollick" in html.read_text() and "<svg" in html.read_text()

    overview = runner.invoke(app, ["graph", "show", "--index", str(index.path)])
    assert overview.exit_code == 0 and "entities" in overview.output and "Cold Archive" in overview.output
    built = runner.invoke(app, ["graph", "build", "--index", str(index.path)])
    assert built.exit_code == 0 and "entities" in built.output


def test_unknown_entity_is_an_input_error_with_suggestions(index: Index) -> None:
    from ragtune.errors import InputError
    from ragtune.graph.view import neighbourhood

    assert neighbourhood(index, "Vessel Operation Team")["key"] == "vessel operations team"  # one close match
    with pytest.raises(InputError, match="'Zeppelin Hangar'"):
        neighbourhood(index, "Zeppelin Hangar")
    assert neighbourhood(index, "the Cold Archive's")["key"] == "cold archive"


def test_graph_show_writes_nothing_even_for_an_unknown_entity(tmp_path: Path) -> None:
    """Before: `graph show` built and wrote <index>/graph/ (then rejected the unknown entity). A read command now
    reads the index and completes a missing graph in memory only."""
    from ragtune.cli import main
    from ragtune.graph.store import graph_dir, graph_exists

    ix = Index.create(tmp_path / "ix", CONFIG)
    ix.add_documents(DOCS)
    listing = sorted(p.relative_to(ix.path) for p in ix.path.rglob("*"))
    with pytest.raises(SystemExit) as unknown:
        main(["graph", "show", "--index", str(ix.path), "--entity", "nobody at all"])
    assert unknown.value.code == 2
    main(["graph", "show", "--index", str(ix.path), "--json"])  # the overview works too, from memory
    main(["graph", "show", "--index", str(ix.path), "--entity", "vessel operations team", "--json"])
    assert not graph_dir(ix.path).exists() and not graph_exists(ix.path)
    assert sorted(p.relative_to(ix.path) for p in ix.path.rglob("*")) == listing
