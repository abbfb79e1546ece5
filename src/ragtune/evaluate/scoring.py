"""Scoring a run: per-question metrics → per-arm metrics with CIs → paired comparisons → `RunResults`.

`score_run(rows, setup, scenario, cost_model, seed)` is the one call the compare workflow makes; it returns a
typed `RunResults` (ragtune.evaluate.results), whose `to_dict()` — with the recommendation report adds
(ragtune.report.recommend.with_recommendation) — is the results.json the report renders.

Rows flagged `"freshness": true` (questions on facts changed after training) are scored separately.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ragtune.arms import ARMS
from ragtune.errors import InputError, RagtuneError
from ragtune.evaluate import answer_metrics, grounding
from ragtune.evaluate.cost import CostModel, Scenario
from ragtune.evaluate.efficiency import latency_summary, tokens_per_s
from ragtune.evaluate.results import RunResults
from ragtune.evaluate.run_files import json_safe, validate_rows
from ragtune.evaluate.stats import DEFAULT_RESAMPLES, bootstrap_ci, holm, paired_test

logger = logging.getLogger(__name__)

QUALITY_METRICS = (
    "exact_match",
    "f1",
    "semantic_similarity",
    "faithfulness",
    "citation_precision",
    "retrieval_recall_at_k",
)
COMPARED_METRICS = ("f1", "exact_match", "semantic_similarity", "faithfulness")
ARM_ORDER = tuple(ARMS)  # known arms first, in ragtune.arms order; others after


def _citations(row: dict[str, Any]) -> list[grounding.Citation]:
    return [
        grounding.Citation(
            doc_id=str(c.get("doc_id", "")),
            chunk_id=str(c.get("chunk_id", "")),
            text=str(c.get("text", "")),
            cited=bool(c.get("cited", False)),
        )
        for c in row["citations"]
    ]


def _retrieved(row: dict[str, Any]) -> list[grounding.Citation]:
    if row.get("retrieved"):
        ranked = sorted(row["retrieved"], key=lambda h: h.get("rank", 0))
        return [grounding.Citation(doc_id=str(h.get("doc_id", "")), chunk_id=str(h.get("chunk_id", "")), text="")
                for h in ranked]
    return _citations(row)


def question_scores(
    rows: Sequence[dict[str, Any]],
    embedder: answer_metrics.Embedder | None = None,
    semantic: bool = True,
    judge: grounding.FaithfulnessJudge | None = None,
    k: int | None = None,
) -> list[dict[str, float | None]]:
    """Every quality metric for every row (None where undefined), computed batch-wise over all rows.

    Semantic similarity encodes every distinct text once; `semantic=False` skips it (None).
    """
    rows = validate_rows(rows)
    answers = [str(r["answer"]) for r in rows]
    golds = [list(r["gold_answers"]) for r in rows]
    citations = [_citations(r) for r in rows]
    gold_docs = [list(r["gold_doc_ids"]) for r in rows]
    gold_chunks = [list(r["gold_chunk_ids"]) for r in rows]
    columns: dict[str, list[float | None]] = {
        "exact_match": answer_metrics.exact_match_batch(answers, golds),
        "f1": answer_metrics.f1_batch(answers, golds),
        "faithfulness": grounding.faithfulness(answers, [[c.text for c in cs] for cs in citations], judge=judge),
        "citation_precision": grounding.citation_precision(citations, golds, gold_docs, gold_chunks),
    }
    # Recall is measured on every retrieved passage ("retrieved", when the harness records it), else on the
    # sources in citations. A row that retrieved nothing is undefined in a closed-book arm.
    retrieved = [_retrieved(r) for r in rows]
    recall = grounding.retrieval_recall_at_k(retrieved, gold_docs, gold_chunks, k=k)
    columns["retrieval_recall_at_k"] = [v if hits else None for v, hits in zip(recall, retrieved)]
    if semantic and rows:
        columns["semantic_similarity"] = answer_metrics.semantic_similarity(answers, golds, embedder=embedder)
    else:
        columns["semantic_similarity"] = [None] * len(rows)
    return [{name: columns[name][i] for name in QUALITY_METRICS} for i in range(len(rows))]


@dataclass(frozen=True)
class ArmResult:
    """One arm's aggregate metrics, 95% CIs and aligned per-question values."""

    arm: str
    n: int
    uses_retrieval: bool
    metrics: dict[str, float | None]
    ci95: dict[str, tuple[float, float]]
    qids: tuple[str, ...] = ()
    per_question: dict[str, list[float | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "uses_retrieval": self.uses_retrieval,
            "metrics": dict(self.metrics),
            "ci95": {m: list(ci) for m, ci in self.ci95.items()},
        }


def _mean_and_ci(values: Sequence[float | None], seed: int, n_resamples: int, alpha: float):
    defined = [v for v in values if v is not None]
    if not defined:
        return None, None
    mean = float(np.mean(defined))
    if len(defined) == 1:
        return mean, (mean, mean)
    return mean, bootstrap_ci(defined, seed=seed, n_resamples=n_resamples, alpha=alpha)


def score_arm(
    rows: Sequence[dict[str, Any]],
    scores: Sequence[dict[str, float | None]] | None = None,
    setup: dict[str, Any] | None = None,
    cost_model: CostModel | None = None,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    alpha: float = 0.05,
    **score_options: Any,
) -> ArmResult:
    """Aggregate one arm's prediction rows (all with the same "arm") into an ArmResult.

    `scores` are the rows' `question_scores` when already computed (else computed here with
    `score_options`: embedder, semantic, judge, k). Efficiency figures come from the rows' timings; training
    time, peak memory and index build time from `setup` (see `score_run`).
    """
    rows = validate_rows(rows)
    if not rows:
        raise InputError("score_arm needs at least one prediction row")
    arms = {r["arm"] for r in rows}
    if len(arms) != 1:
        raise InputError(f"score_arm takes the rows of one arm, got arms {sorted(arms)}")
    arm = rows[0]["arm"]
    if scores is None:
        scores = question_scores(rows, **score_options)
    if len(scores) != len(rows):
        raise InputError(f"{len(scores)} score rows for {len(rows)} prediction rows")
    uses_retrieval = any(r["citations"] or r.get("retrieved") for r in rows)
    per_question = {m: [s[m] for s in scores] for m in QUALITY_METRICS}
    metrics: dict[str, float | None] = {}
    ci95: dict[str, tuple[float, float]] = {}
    for name, values in per_question.items():
        mean, ci = _mean_and_ci(values, seed, n_resamples, alpha)
        metrics[name] = mean
        if ci is not None:
            ci95[name] = ci
    metrics.update(latency_summary([r["retrieve_ms"] for r in rows], [r["generate_ms"] for r in rows]))
    metrics["tokens_per_s"] = tokens_per_s([r["completion_tokens"] for r in rows], [r["generate_ms"] for r in rows])
    metrics.update(_cost_metrics(arm, uses_retrieval, metrics["latency_ms_mean"], setup or {}, cost_model or CostModel()))
    return ArmResult(
        arm=arm,
        n=len(rows),
        uses_retrieval=uses_retrieval,
        metrics=metrics,
        ci95=ci95,
        qids=tuple(r["qid"] for r in rows),
        per_question=per_question,
    )


def _cost_metrics(arm: str, uses_retrieval: bool, mean_latency_ms: float, setup: dict, cost_model: CostModel) -> dict:
    arm_setup = (setup.get("arms") or {}).get(arm) or {}
    index_setup = setup.get("index") or {}
    train_s = float(arm_setup.get("train_s") or 0.0)
    build_s = float(index_setup.get("build_s") or 0.0) if uses_retrieval else 0.0
    out = {
        "cost_per_1k_queries": cost_model.cost_per_1k_queries(mean_latency_ms),
        "training_s": train_s,
        "training_usd": cost_model.training_cost(train_s),
        "indexing_s": build_s,
        "indexing_usd": cost_model.indexing_cost(build_s),
        "peak_memory_mb": arm_setup.get("peak_memory_mb"),
        "index_size_bytes": index_setup.get("size_bytes") if uses_retrieval else None,
    }
    return out


def _ordered_arms(names: Sequence[str]) -> list[str]:
    known = [a for a in ARM_ORDER if a in names]
    return known + [a for a in dict.fromkeys(names) if a not in ARM_ORDER]


def compare_arms(
    arm_results: Sequence[ArmResult],
    metrics: Sequence[str] = COMPARED_METRICS,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    alpha: float = 0.05,
    reference: str | None = None,
) -> list[dict[str, Any]]:
    """Paired tests between every pair of arms (later arm `a` vs earlier arm `b`) on shared questions.

    With `reference`, only each other arm against it (a smaller family: more power). p-values are
    Holm-adjusted within each metric's family of pairs; `significant` uses the adjusted value.
    """
    by_arm = {r.arm: r for r in arm_results}
    order = _ordered_arms(list(by_arm))
    if reference is not None and reference not in by_arm:
        raise InputError(f"reference arm {reference!r} is not among the arms {order}")
    pairs = [(a, b) for j, a in enumerate(order) for b in order[:j]]
    if reference is not None:
        pairs = [(a, reference) for a in order if a != reference]
    comparisons: list[dict[str, Any]] = []
    for metric in metrics:
        family = []
        for a, b in pairs:
            va = dict(zip(by_arm[a].qids, by_arm[a].per_question.get(metric, [])))
            vb = dict(zip(by_arm[b].qids, by_arm[b].per_question.get(metric, [])))
            shared = [q for q in va if q in vb and va[q] is not None and vb[q] is not None]
            if len(shared) < 2:
                continue
            test = paired_test([va[q] for q in shared], [vb[q] for q in shared], seed=seed,
                               n_resamples=n_resamples, alpha=alpha)
            family.append({"a": a, "b": b, "metric": metric, "delta": test.delta, "ci95": list(test.ci),
                           "p_value": test.p_value, "n": test.n, "method": test.method})
        for entry, adjusted in zip(family, holm([e["p_value"] for e in family])):
            entry["p_value_holm"] = adjusted
            entry["significant"] = adjusted < alpha
        comparisons.extend(family)
    return comparisons


def _score_group(rows, scores, setup, cost_model, seed, n_resamples, alpha, compared,
                 reference: str | None = None) -> tuple[list[ArmResult], list]:
    by_arm: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_arm.setdefault(row["arm"], []).append(i)
    results = [
        score_arm([rows[i] for i in by_arm[arm]], [scores[i] for i in by_arm[arm]], setup=setup,
                  cost_model=cost_model, seed=seed, n_resamples=n_resamples, alpha=alpha)
        for arm in _ordered_arms(list(by_arm))
    ]
    if reference == "auto":  # the arm that should follow changed facts: rag, else the first retrieval arm
        retrieval = [r.arm for r in results if r.uses_retrieval]
        reference = "rag" if "rag" in retrieval else (retrieval[0] if retrieval else None)
    return results, compare_arms(results, compared, seed=seed, n_resamples=n_resamples, alpha=alpha,
                                 reference=reference)


def score_run(
    rows: Sequence[dict[str, Any]],
    setup: dict[str, Any] | None = None,
    scenario: Scenario | None = None,
    cost_model: CostModel | None = None,
    seed: int = 0,
    *,
    embedder: answer_metrics.Embedder | None = None,
    semantic: bool = True,
    judge: grounding.FaithfulnessJudge | None = None,
    k: int | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    alpha: float = 0.05,
    primary_metric: str = "f1",
) -> RunResults:
    """Score every arm of a run: prediction rows → RunResults (`.to_dict()`: the results.json structure).

    `setup` is recorded as-is; these keys feed the efficiency/cost figures when present:
    setup["arms"][arm] = {"train_s": seconds of training, "peak_memory_mb": ...};
    setup["index"] = {"build_s": seconds to build the index, "size_bytes": ...}.
    `scenario` (a ragtune.evaluate.cost.Scenario, default: its defaults) is recorded with the results; the
    recommendation for it is report's (ragtune.report.recommend.with_recommendation). If the bundled embedder
    cannot be loaded, semantic similarity is left out with a warning in `warnings`.
    """
    rows = validate_rows(rows)
    if not rows:
        raise InputError("score_run needs at least one prediction row")
    if primary_metric not in COMPARED_METRICS:
        raise InputError(f"primary_metric must be one of {COMPARED_METRICS}, got {primary_metric!r}")
    scenario = scenario if scenario is not None else Scenario()
    cost_model = cost_model if cost_model is not None else CostModel()
    warnings: list[str] = []
    try:
        scores = question_scores(rows, embedder=embedder, semantic=semantic, judge=judge, k=k)
    except (ImportError, RagtuneError, OSError) as exc:
        if not semantic:
            raise
        warnings.append(f"semantic similarity skipped: the embedder could not be loaded ({exc})")
        logger.warning(warnings[-1])
        scores = question_scores(rows, semantic=False, judge=judge, k=k)

    main = [i for i, r in enumerate(rows) if not r["freshness"]]
    fresh = [i for i, r in enumerate(rows) if r["freshness"]]
    common = dict(setup=setup, cost_model=cost_model, seed=seed, n_resamples=n_resamples, alpha=alpha)
    arm_results, comparisons = _score_group([rows[i] for i in main], [scores[i] for i in main],
                                            compared=COMPARED_METRICS, **common) if main else ([], [])
    freshness = None
    if fresh:
        fresh_arms, fresh_comparisons = _score_group([rows[i] for i in fresh], [scores[i] for i in fresh],
                                                     compared=("f1", "exact_match"), reference="auto", **common)
        freshness = {
            "n": len({rows[i]["qid"] for i in fresh}),
            "arms": {r.arm: {"n": r.n, "metrics": {m: r.metrics[m] for m in ("exact_match", "f1")},
                             "ci95": {m: list(r.ci95[m]) for m in ("exact_match", "f1") if m in r.ci95}}
                     for r in fresh_arms},
            "comparisons": fresh_comparisons,
        }
    per_question: dict[str, dict[str, dict]] = {}
    for row, score in zip(rows, scores):
        key = f"{row['qid']}" if not row["freshness"] else f"fresh:{row['qid']}"
        per_question.setdefault(row["arm"], {})[key] = score
    results: dict[str, Any] = {
        "format_version": 1,
        "primary_metric": primary_metric,
        "alpha": alpha,
        "seed": seed,
        "n_resamples": n_resamples,
        "arms": {r.arm: r.to_dict() for r in arm_results},
        "comparisons": comparisons,
        "freshness": freshness,
        "setup": {"questions": len({rows[i]["qid"] for i in main}), **(setup or {})},
        "scenario": scenario.model_dump(),
        "cost_model": cost_model.model_dump(),
        "per_question": per_question,
        "warnings": warnings,
        "methods": {
            "faithfulness": "LLM judge" if judge is not None else "content-token support (stemmed, stopwords removed)",
            "ci": f"percentile bootstrap of the mean, {n_resamples} resamples",
            "paired_test": "sign-flip permutation p-value (Holm-adjusted per metric), paired-bootstrap CI",
        },
    }
    return RunResults.from_dict(json_safe(results))
