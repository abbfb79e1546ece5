"""The "+rerank" modes: a mode's hits reordered by the fusion of their scores with an LLM's query likelihood."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig, RetrieveConfig
from ragtune.errors import ConfigError
from ragtune.index import Index
from ragtune.retrieve import RERANKED_MODES, open_retriever
from ragtune.retrieve.rerank import LikelihoodScorer, RerankingRetriever, load_scorer
from ragtune.types import Chunk, Document, Hit

CONFIG = IndexConfig(embed=EmbedConfig(model="hash:128"), chunk=ChunkConfig(chunk_tokens=64, overlap_tokens=8))


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    docs = [Document(f"animal{i}", f"The {name} is an animal that lives on the farm and eats grass.", title=name,
                     metadata={"groups": ["farm"]})
            for i, name in enumerate(["cow", "sheep", "goat", "horse", "donkey", "pig"])]
    docs.append(Document("policy", "Employees get thirty days of paid leave per year.", title="Leave policy",
                         metadata={"groups": ["hr"]}))
    index = Index.create(tmp_path_factory.mktemp("ix") / "ix", CONFIG)
    index.add_documents(docs)
    return index


class Ranked:
    """An inner retriever with a fixed ranking; it records what it was asked."""

    def __init__(self, names: list[str]):
        self.hits = [Hit(Chunk(n, n, f"text of {n}"), 1.0 - i / 10, i) for i, n in enumerate(names)]
        self.calls: list[tuple[int, object]] = []

    def retrieve(self, queries, k=10, filters=None):
        self.calls.append((k, filters))
        return [self.hits[:k] for _ in queries]


class Likes:
    """A scorer that likes the passages in `order` best first (scores 10, 9, ...), the rest least."""

    def __init__(self, order: list[str]):
        self.order = order
        self.seen: list[list[str]] = []

    def score(self, query, passages):
        self.seen.append(list(passages))
        names = [p.removeprefix("text of ") for p in passages]
        return [10.0 - self.order.index(n) if n in self.order else 0.0 for n in names]


def test_weight_one_ranks_by_likelihood_alone_and_zero_keeps_the_order():
    inner = Ranked(["a", "b", "c", "d"])
    by_llm = RerankingRetriever(inner, RetrieveConfig(rerank_weight=1.0, rerank_depth=4), Likes(["c", "a", "d", "b"]))
    hits = by_llm.retrieve(["q"], k=4)[0]
    assert [h.chunk.doc_id for h in hits] == ["c", "a", "d", "b"]
    assert [h.rank for h in hits] == [0, 1, 2, 3]
    assert hits[0].score == pytest.approx(1.0) and hits[-1].score == pytest.approx(0.0)
    untouched = RerankingRetriever(inner, RetrieveConfig(rerank_weight=0.0, rerank_depth=4), Likes(["c"]))
    assert [h.chunk.doc_id for h in untouched.retrieve(["q"], k=3)[0]] == ["a", "b", "c"]


def test_the_fusion_weighs_both_scores():
    # base scores 1.0, 0.9, 0.8 (normalised 1, .5, 0); likelihood prefers c, then b, then a (normalised 0, .5, 1)
    inner = Ranked(["a", "b", "c"])
    hits = RerankingRetriever(inner, RetrieveConfig(rerank_weight=0.75, rerank_depth=3),
                              Likes(["c", "b", "a"])).retrieve(["q"], k=3)[0]
    assert [(h.chunk.doc_id, round(h.score, 3)) for h in hits] == [("c", 0.75), ("b", 0.5), ("a", 0.25)]


def test_only_the_depth_is_scored_and_the_rest_follow_in_order():
    inner = Ranked(["a", "b", "c", "d", "e"])
    likes = Likes(["b", "a"])
    retriever = RerankingRetriever(inner, RetrieveConfig(rerank_weight=1.0, rerank_depth=2), likes)
    hits = retriever.retrieve(["q"], k=4, filters={"groups": "hr"})[0]
    assert [h.chunk.doc_id for h in hits] == ["b", "a", "c", "d"]
    assert [h.rank for h in hits] == [0, 1, 2, 3]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4  # sorting by score keeps the order
    assert likes.seen == [["text of a", "text of b"]]
    assert inner.calls == [(4, {"groups": "hr"})]  # filters go to the inner ranking; it is asked for max(k, depth)
    retriever.retrieve(["q"], k=1)
    assert inner.calls[-1][0] == 2  # the depth, even when k is smaller


def test_a_single_hit_is_not_scored():
    likes = Likes(["a"])
    hits = RerankingRetriever(Ranked(["a"]), RetrieveConfig(rerank_weight=1.0), likes).retrieve(["q"], k=5)[0]
    assert [h.chunk.doc_id for h in hits] == ["a"] and likes.seen == []


def test_batched_scores_equal_one_by_one_and_the_full_logits(tiny_lm_dir: Path):
    import torch

    scorer = LikelihoodScorer(tiny_lm_dir, batch_size=3)
    passages = ["The cow eats grass.", "Employees get thirty days of paid leave per year and more besides.", "VPN",
                "A much longer passage about farms, " * 6]
    batched = scorer.score("how many leave days?", passages)
    single = [scorer.score("how many leave days?", [p])[0] for p in passages]
    assert batched == pytest.approx(single, abs=1e-4)  # left padding with positions counted from each row's start
    # against the whole sequence's logits, by hand
    query_ids = scorer._ids(" how many leave days?")
    row = scorer._head + scorer._ids(passages[0]) + scorer._tail + query_ids
    with torch.inference_mode():
        logits = scorer.model(input_ids=torch.tensor([row])).logits[0].float()
    lp = torch.log_softmax(logits[len(row) - len(query_ids) - 1 : -1], -1)
    expected = lp[torch.arange(len(query_ids)), torch.tensor(query_ids)].mean().item()
    assert single[0] == pytest.approx(expected, abs=1e-4)
    assert scorer.score("   ", passages) == [0.0] * len(passages)


@pytest.mark.parametrize("mode", RERANKED_MODES)
def test_every_rerank_mode_permutes_its_base_modes_hits(index: Index, tiny_lm_dir: Path, mode: str):
    base_mode = mode.removesuffix("+rerank")
    query = ["animal on the farm that eats grass"]
    base = open_retriever(index, base_mode).retrieve(query, k=5)[0]
    settings = {"rerank_model": str(tiny_lm_dir), "rerank_depth": 5, "rerank_weight": 1.0}
    hits = open_retriever(index, mode, **settings).retrieve(query, k=5)[0]
    assert sorted(h.chunk.chunk_id for h in hits) == sorted(h.chunk.chunk_id for h in base)
    scores = load_scorer(str(tiny_lm_dir)).score(query[0], [h.chunk.text for h in hits])
    assert scores == sorted(scores, reverse=True)  # weight 1: by the tiny model's likelihood
    # filters are applied before the ranking
    hr = open_retriever(index, mode, **settings).retrieve(query, k=2, filters={"groups": ["hr"]})[0]
    assert [h.chunk.doc_id for h in hr] in (["policy"], [])


def test_an_endpoint_cannot_rerank_and_bad_settings_are_refused(index: Index):
    with pytest.raises(ConfigError, match="needs a local model"):
        load_scorer("http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="bad retriever settings"):
        open_retriever(index, "hybrid+rerank", rerank_weight=2.0)
    with pytest.raises(ConfigError, match="unknown retrieval mode"):
        open_retriever(index, "hybrid+rrank")


@pytest.mark.parametrize(("flags", "reread"), [([], 7), (["--rerank-depth", "2"], 2)])
def test_search_takes_the_rerank_settings(index: Index, monkeypatch, flags, reread: int):
    """`ragtune search --rerank-depth/--rerank-weight` reach the reranker: the scorer reads that many passages
    (by default 10, here all 7), and at weight 1 they come in its order."""
    import json

    from typer.testing import CliRunner

    from ragtune.cli import build_app

    query = "animal on the farm that eats grass"
    hits = open_retriever(index, "dense").retrieve([query], k=7)[0]
    base = [h.chunk.doc_id for h in hits]
    scorer = Likes([h.chunk.text for h in reversed(hits)])  # real chunk texts: the base ranking's last first
    monkeypatch.setattr("ragtune.retrieve.rerank.load_scorer", lambda model: scorer)
    result = CliRunner().invoke(build_app(), ["search", query, "--index", str(index.path), "-k", "5", "--json",
                                              "--mode", "dense+rerank", "--rerank-weight", "1", *flags])
    assert result.exit_code == 0, result.output
    shown = [hit["doc_id"] for hit in json.loads(result.stdout)]
    assert [len(seen) for seen in scorer.seen] == [reread]
    assert shown == (list(reversed(base[:reread])) + base[reread:])[:5]


def test_ray_workers_and_search_trials_rerank_with_the_runs_settings(index: Index):
    """The other places a comparison opens retrievers: Ray answer workers and the settings search's trials."""
    from ragtune.distributed.ray_compare import AnswerWorker
    from ragtune.pipeline import AnswerSettings
    from ragtune.types import Example
    from ragtune.workflows.answer_trials import AnswerTrials

    options = {"rerank_depth": 3, "rerank_weight": 0.25}
    _index, worker_retriever = AnswerWorker("hybrid+rerank", 3, 4, retrieve_options=options)._open(str(index.path))
    trials = AnswerTrials("rag", [Example("q", "a")], None, index, AnswerSettings(), k=3, mode="bm25+rerank",
                          retrieve_options=options)
    for retriever in (worker_retriever, trials._retriever(index, "bm25+rerank")):
        assert isinstance(retriever, RerankingRetriever) and (retriever.depth, retriever.weight) == (3, 0.25)
    assert not isinstance(trials._retriever(index, "bm25"), RerankingRetriever)  # a searched mode without it
