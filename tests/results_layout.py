"""The golden layout of results.json (shared by the report and workflow tests)."""

from __future__ import annotations

# The results.json layout compare wrote before RunResults existed (keys in order).
TOP = ["format_version", "primary_metric", "alpha", "seed", "n_resamples", "arms", "comparisons", "freshness",
       "setup", "scenario", "cost_model", "per_question", "warnings", "methods", "recommendation"]
ARM = ["n", "uses_retrieval", "metrics", "ci95"]
FRESH_ARM = ["n", "metrics", "ci95"]
METRICS = ["exact_match", "f1", "semantic_similarity", "faithfulness", "citation_precision", "retrieval_recall_at_k",
           "latency_ms_p50", "latency_ms_p95", "latency_ms_mean", "retrieve_ms_p50", "retrieve_ms_p95",
           "generate_ms_p50", "generate_ms_p95", "tokens_per_s", "cost_per_1k_queries", "training_s", "training_usd",
           "indexing_s", "indexing_usd", "peak_memory_mb", "index_size_bytes"]
COMPARISON = ["a", "b", "metric", "delta", "ci95", "p_value", "n", "method", "p_value_holm", "significant"]
QUESTION = ["exact_match", "f1", "semantic_similarity", "faithfulness", "citation_precision", "retrieval_recall_at_k"]
SCENARIO = ["knowledge_change", "latency_budget_ms", "queries_per_day", "training_budget_usd", "needs_citations"]
COST = ["cpu_hour_usd", "gpu_hour_usd", "serve_on", "train_on", "concurrency"]


def assert_golden_layout(results: dict, arms: list[str], freshness: bool = True) -> None:
    assert list(results) == TOP
    assert list(results["arms"]) == arms
    for info in results["arms"].values():
        assert list(info) == ARM and list(info["metrics"]) == METRICS
        assert all(isinstance(ci, list) and len(ci) == 2 for ci in info["ci95"].values())
    assert results["comparisons"] and all(list(c) == COMPARISON for c in results["comparisons"])
    if freshness:
        assert list(results["freshness"]) == ["n", "arms", "comparisons"]
        assert all(list(a) == FRESH_ARM and list(a["metrics"]) == ["exact_match", "f1"]
                   for a in results["freshness"]["arms"].values())
        assert all(list(c) == COMPARISON for c in results["freshness"]["comparisons"])
    else:
        assert results["freshness"] is None
    assert list(results["scenario"]) == SCENARIO and list(results["cost_model"]) == COST
    assert all(list(q) == QUESTION for per_arm in results["per_question"].values() for q in per_arm.values())
    assert list(results["methods"]) == ["faithfulness", "ci", "paired_test"]
    assert list(results["recommendation"]) == ["arm", "reasons", "excluded"]
