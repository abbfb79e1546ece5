"""Parity of the retrieval metrics with BEIR / pytrec_eval on a hand-worked example."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ragtune.errors import InputError
from ragtune.evaluate.retrieval import (
    hits_to_doc_scores,
    load_beir,
    load_qrels,
    rank_docs,
    retrieval_metrics,
)
from ragtune.types import Chunk, Hit

QRELS = {
    "q1": {"d1": 1, "d2": 2, "d5": 1},
    "q2": {"d9": 1},  # the run never answers q2: it scores 0 everywhere
    "q3": {"d7": 0, "d8": 1},  # a judged non-relevant doc (rel 0) gains nothing
}
RUN = {
    "q1": {"d3": 0.9, "d2": 0.8, "d1": 0.8, "d4": 0.1},  # d1/d2 tie: trec_eval puts d2 (larger id) first
    "q3": {"d7": 0.5, "d8": 0.4},
}


def test_trec_eval_tie_order() -> None:
    assert rank_docs(RUN["q1"]) == ["d3", "d2", "d1", "d4"]


def test_hand_worked_example() -> None:
    # q1 ranked d3 (0), d2 (2), d1 (1), d4 (0)
    dcg_q1 = 0 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)  # = 1.26186 + 0.5
    idcg_q1 = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # ideal gains 2, 1, 1
    ndcg_q1 = dcg_q1 / idcg_q1  # 1.76186 / 3.13093 = 0.562727
    ndcg_q3 = (1 / math.log2(3)) / 1.0  # d8 at rank 2; ideal: one relevant doc at rank 1
    assert ndcg_q1 == pytest.approx(0.562727, abs=1e-6)
    metrics = retrieval_metrics(RUN, QRELS, recall_ks=(2, 10, 100))
    assert metrics["n_queries"] == 3
    assert metrics["ndcg@10"] == pytest.approx((ndcg_q1 + 0 + ndcg_q3) / 3)
    assert metrics["recall@10"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert metrics["mrr@10"] == pytest.approx((1 / 2 + 0 + 1 / 2) / 3)


def test_recall_cutoff_counts_rank_positions() -> None:
    metrics = retrieval_metrics(RUN, QRELS, recall_ks=(2,))
    # q1 top 2 = d3, d2 -> 1 of 3 relevant; q3 top 2 = d7, d8 -> 1 of 1 relevant (d7 has rel 0)
    assert metrics["recall@2"] == pytest.approx((1 / 3 + 0 + 1) / 3)


def test_chunk_hits_reduce_to_max_per_document() -> None:
    def hit(chunk_id: str, score: float) -> Hit:
        doc = chunk_id.split("#")[0]
        return Hit(Chunk(chunk_id=chunk_id, doc_id=doc, text=""), score)

    scores = hits_to_doc_scores([hit("a#0", 0.2), hit("b#0", 0.5), hit("a#1", 0.7), hit("c#0", 0.1)], depth=2)
    assert scores == {"a": 0.7, "b": 0.5}


def test_load_beir_split(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "x"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "1", "text": "first?"}\n{"_id": "2", "text": "second?"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n2\td1\t1\n")
    data = load_beir(tmp_path, "test")
    assert data.queries == {"2": "second?"} and data.qrels == {"2": {"d1": 1}}
    (tmp_path / "qrels" / "bad.tsv").write_text("2\td1\n")
    with pytest.raises(InputError, match="bad.tsv:1"):
        load_qrels(tmp_path / "qrels" / "bad.tsv")
    with pytest.raises(InputError, match="missing qrels/dev.tsv"):
        load_beir(tmp_path, "dev")
