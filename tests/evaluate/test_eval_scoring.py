"""score_arm / compare_arms / score_run on small hand-built runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ragtune.errors import ConfigError, InputError
from ragtune.evaluate.cost import CostModel
from ragtune.evaluate.run_files import dumps_results, read_predictions, validate_rows
from ragtune.evaluate.scoring import compare_arms, question_scores, score_arm, score_run


class WordEmbedder:
    def encode(self, texts):
        vocab = sorted({w for t in texts for w in t.lower().split()}) or ["_"]
        out = np.zeros((len(texts), len(vocab)), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, vocab.index(w)] = 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def _row(qid, arm, answer, gold, citations=(), fresh=False, gen=100.0, ret=0.0):
    return {"qid": qid, "arm": arm, "question": f"question {qid}?", "answer": answer, "gold_answers": [gold],
            "gold_doc_ids": [f"doc{qid}"], "gold_chunk_ids": [f"doc{qid}#0"], "citations": list(citations),
            "retrieve_ms": ret, "generate_ms": gen, "prompt_tokens": 50, "completion_tokens": 10, "freshness": fresh}


def _cite(qid, gold=True, cited=True, text="some text"):
    doc = f"doc{qid}" if gold else "other"
    return {"number": 1, "doc_id": doc, "chunk_id": f"{doc}#0", "title": doc, "text": text, "score": 0.9, "cited": cited}


def small_run():
    rows = []
    answers = {"q1": "Mira Okonkwo", "q2": "42", "q3": "Pier 9", "q4": "K-619"}
    for qid, gold in answers.items():
        rows.append(_row(qid, "base", "I don't know", gold, gen=200.0))
        rows.append(_row(qid, "rag", gold if qid != "q4" else "K", gold,
                         citations=[_cite(qid, text=f"The answer is {gold}."), _cite(qid, gold=False, cited=False)],
                         gen=400.0, ret=20.0))
    rows.append(_row("f1", "base", "old value", "new value", fresh=True))
    rows.append(_row("f1", "rag", "new value", "new value", citations=[_cite("f1")], fresh=True, ret=20.0))
    return rows


def test_question_scores_hand_worked():
    rows = small_run()
    scores = question_scores(rows, embedder=WordEmbedder())
    base_q1, rag_q1 = scores[0], scores[1]
    assert base_q1["exact_match"] == 0.0 and base_q1["f1"] == 0.0
    assert base_q1["faithfulness"] is None and base_q1["citation_precision"] is None
    assert base_q1["retrieval_recall_at_k"] is None  # closed-book: undefined, not 0
    assert rag_q1 == {"exact_match": 1.0, "f1": 1.0, "semantic_similarity": pytest.approx(1.0), "faithfulness": 1.0,
                      "citation_precision": 1.0, "retrieval_recall_at_k": 1.0}


def test_score_arm_aggregates_and_costs():
    rows = [r for r in small_run() if r["arm"] == "rag" and not r["freshness"]]
    result = score_arm(rows, setup={"index": {"build_s": 36.0}}, cost_model=CostModel(cpu_hour_usd=0.36),
                       embedder=WordEmbedder(), n_resamples=200)
    assert result.n == 4 and result.uses_retrieval
    assert result.metrics["exact_match"] == 0.75
    assert result.metrics["f1"] == 0.75  # "K" vs "K-619": normalised 'k' vs 'k619' -> 0
    assert result.metrics["latency_ms_p50"] == 420.0
    assert result.metrics["tokens_per_s"] == pytest.approx(40 / 1.6)
    assert result.metrics["cost_per_1k_queries"] == pytest.approx(1000 * 0.42 / 3600 * 0.36)
    assert result.metrics["indexing_usd"] == pytest.approx(36 / 3600 * 0.36)
    lo, hi = result.ci95["f1"]
    assert 0.0 <= lo <= 0.75 <= hi <= 1.0
    with pytest.raises(InputError, match="one arm"):
        score_arm(small_run())


def test_compare_arms_and_reference():
    rows = [r for r in small_run() if not r["freshness"]]
    arms = [score_arm([r for r in rows if r["arm"] == a], semantic=False, n_resamples=200) for a in ("base", "rag")]
    comparisons = compare_arms(arms, metrics=("f1",), n_resamples=200)
    assert len(comparisons) == 1
    c = comparisons[0]
    assert (c["a"], c["b"], c["metric"], c["n"]) == ("rag", "base", "f1", 4)
    assert c["delta"] == 0.75
    assert c["p_value"] == pytest.approx(2 / 16 * 2)  # exact: 3 nonzero equal diffs + one 0 -> 4 of 16 flips
    assert c["p_value_holm"] == c["p_value"]
    with pytest.raises(InputError, match="reference arm"):
        compare_arms(arms, reference="raft")


def test_score_run_structure_and_json(tmp_path):
    results = score_run(small_run(), setup={"models": {"llm": "tiny"}}, seed=3, embedder=WordEmbedder(),
                        n_resamples=200).to_dict()
    assert list(results["arms"]) == ["base", "rag"]
    assert results["setup"] == {"questions": 4, "models": {"llm": "tiny"}}
    assert results["arms"]["rag"]["metrics"]["f1"] == 0.75
    assert results["arms"]["base"]["metrics"]["citation_precision"] is None
    assert {c["metric"] for c in results["comparisons"]} == {"f1", "exact_match", "semantic_similarity"}
    assert results["freshness"]["n"] == 1
    assert results["freshness"]["arms"]["rag"]["metrics"]["f1"] == 1.0
    assert results["per_question"]["rag"]["fresh:f1"]["f1"] == 1.0
    assert "recommendation" not in results  # the recommendation is report's (report.recommend.with_recommendation)
    assert list(results)[-1] == "methods"
    text = dumps_results(results)  # strict JSON: no NaN
    assert json.loads(text)["seed"] == 3


def test_score_run_without_embedder_warns(monkeypatch):
    class Broken:
        def encode(self, texts):
            raise ConfigError("no model here")

    results = score_run(small_run(), embedder=Broken(), n_resamples=200).to_dict()
    assert results["arms"]["rag"]["metrics"]["semantic_similarity"] is None
    assert "semantic similarity skipped" in results["warnings"][0]


def test_rows_are_validated(tmp_path):
    with pytest.raises(InputError, match="lacks \\['gold_answers'\\]"):
        validate_rows([{"qid": "q1", "arm": "rag", "answer": "x"}])
    with pytest.raises(InputError, match="non-empty list"):
        validate_rows([{"qid": "q1", "arm": "rag", "answer": "x", "gold_answers": "x"}])
    bad = tmp_path / "predictions.jsonl"
    bad.write_text('{"qid": "q1"}\nnot json\n')
    with pytest.raises(InputError, match="predictions.jsonl:2"):
        read_predictions(tmp_path)


def test_recall_uses_every_retrieved_passage_when_recorded():
    row = _row("q1", "rag", "Pier 9", "Pier 9", citations=[_cite("q1", gold=False)])
    assert question_scores([row], semantic=False)[0]["retrieval_recall_at_k"] == 0.0  # only the cited source
    row["retrieved"] = [{"rank": 1, "doc_id": "docq1", "chunk_id": "docq1#0", "score": 0.5},
                        {"rank": 0, "doc_id": "other", "chunk_id": "other#0", "score": 0.9}]
    assert question_scores([row], semantic=False, k=None)[0]["retrieval_recall_at_k"] == 1.0
    assert question_scores([row], semantic=False, k=1)[0]["retrieval_recall_at_k"] == 0.0  # gold is ranked second
    closed = _row("q1", "base", "x", "Pier 9")
    closed["retrieved"] = []
    assert question_scores([closed], semantic=False)[0]["retrieval_recall_at_k"] is None
