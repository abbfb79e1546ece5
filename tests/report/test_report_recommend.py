"""Recommendation rules on constructed results and on the fake run."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from ragtune.report.recommend import Scenario, find_comparison, recommend, with_recommendation


def arm(f1, p95=500.0, cost=0.01, retrieval=True, train_usd=0.0, train_s=0.0):
    return {"n": 100, "uses_retrieval": retrieval, "ci95": {"f1": [f1 - 0.05, f1 + 0.05]},
            "metrics": {"f1": f1, "latency_ms_p50": p95 * 0.8, "latency_ms_p95": p95, "cost_per_1k_queries": cost,
                        "training_usd": train_usd, "training_s": train_s}}


def comp(a, b, delta, p):
    return {"a": a, "b": b, "metric": "f1", "delta": delta, "p_value": p, "p_value_holm": p, "significant": p < 0.05}


def results_with(arms, comparisons, freshness=None):
    return {"primary_metric": "f1", "alpha": 0.05, "arms": arms, "comparisons": comparisons, "freshness": freshness}


def test_significantly_best_arm_wins_even_if_pricier():
    r = results_with({"rag": arm(0.5, cost=0.01), "raft": arm(0.7, cost=0.02, train_usd=1.0, train_s=100)},
                     [comp("raft", "rag", 0.2, 0.001)])
    rec = recommend(r, Scenario())
    assert rec.arm == "raft"
    assert "raft has the best F1" in rec.reasons[0]
    assert any("raft beats rag on F1 by +0.20" in x for x in rec.reasons)


def test_with_recommendation_adds_it_last_and_leaves_the_scored_results_alone():
    r = results_with({"rag": arm(0.5, cost=0.01), "raft": arm(0.7, cost=0.02, train_usd=1.0, train_s=100)},
                     [comp("raft", "rag", 0.2, 0.001)])
    done = with_recommendation(r, Scenario())
    assert list(done.to_dict())[-1] == "recommendation" and "recommendation" not in r
    assert done.recommendation == recommend(r)
    assert done.to_dict()["recommendation"] == {"arm": "raft", "reasons": list(recommend(r).reasons), "excluded": {}}


def test_tie_goes_to_the_clearly_cheaper_arm():
    r = results_with({"base": arm(0.1, cost=0.005, retrieval=False), "rag": arm(0.55, cost=0.01),
                      "raft": arm(0.6, cost=0.03, train_usd=1.0, train_s=100)},
                     [comp("raft", "rag", 0.05, 0.30), comp("raft", "base", 0.5, 0.001), comp("rag", "base", 0.45, 0.001)])
    rec = recommend(r, Scenario())
    assert rec.arm == "rag"
    assert "statistically tied with raft" in rec.reasons[0]
    # Holm over the two comparisons with the best arm: 0.001 x 2
    assert "base is significantly below raft on F1 (-0.50, p=0.002)" in rec.reasons
    assert "raft is not significantly different from rag on F1 but costs more" in rec.reasons


def test_ties_are_judged_against_the_best_arm_only():
    """Five arms, ten pairwise tests: adjusting over all ten would call base (p=0.009 raw) tied with the best
    arm; the decision only rests on the four comparisons with the best, so base is clearly below it."""
    arms = {"base": arm(0.05, cost=0.005, retrieval=False), "rag": arm(0.08), "ft": arm(0.04, retrieval=False),
            "ft_rag": arm(0.29, cost=0.012), "raft": arm(0.03, cost=0.012)}
    comparisons = [comp("ft_rag", "base", 0.24, 0.009), comp("ft_rag", "rag", 0.21, 0.0035),
                   comp("ft_rag", "ft", 0.25, 0.0015), comp("raft", "ft_rag", -0.26, 0.003)]
    comparisons += [comp(a, b, 0.01, 0.5) for a, b in (("rag", "base"), ("ft", "base"), ("raft", "base"))]
    for c in comparisons:  # as scoring stores them: Holm over all pairs, which would tie base with ft_rag
        c["p_value_holm"] = min(1.0, c["p_value"] * 7)
        c["significant"] = c["p_value_holm"] < 0.05
    rec = recommend(results_with(arms, comparisons), Scenario())
    assert rec.arm == "ft_rag"
    assert "ft_rag beats base on F1 by +0.24 (p=0.009, significant)" in rec.reasons


def test_tie_with_negligible_saving_keeps_the_best():
    r = results_with({"rag": arm(0.55, cost=0.0100), "raft": arm(0.6, cost=0.0101)}, [comp("raft", "rag", 0.05, 0.30)])
    assert recommend(r, Scenario(knowledge_change="static")).arm == "raft"


def test_citations_exclude_closed_book_arms():
    r = results_with({"ft": arm(0.8, retrieval=False, train_usd=0.1, train_s=10), "rag": arm(0.5)},
                     [comp("ft", "rag", 0.3, 0.001)])
    assert recommend(r, Scenario()).arm == "ft"
    rec = recommend(r, Scenario(needs_citations=True))
    assert rec.arm == "rag"
    assert "cannot cite" in rec.excluded["ft"]


def test_latency_budget_excludes_slow_arms():
    r = results_with({"rag": arm(0.5, p95=300), "raft": arm(0.7, p95=900, train_usd=0.1, train_s=10)},
                     [comp("raft", "rag", 0.2, 0.001)])
    rec = recommend(r, Scenario(latency_budget_ms=500))
    assert rec.arm == "rag"
    assert rec.excluded["raft"] == "p95 latency 900 ms is over the 500 ms budget"


def test_freshness_results_exclude_stale_arms():
    fresh = {"arms": {"ft": {"metrics": {"f1": 0.1}}, "rag": {"metrics": {"f1": 0.8}}},
             "comparisons": [comp("ft", "rag", -0.7, 0.001)]}
    r = results_with({"ft": arm(0.8, retrieval=False, train_usd=0.1, train_s=10), "rag": arm(0.5)},
                     [comp("ft", "rag", 0.3, 0.001)], freshness=fresh)
    assert recommend(r, Scenario(knowledge_change="static")).arm == "ft"  # static knowledge: staleness is moot
    rec = recommend(r, Scenario(knowledge_change="weekly"))
    assert rec.arm == "rag"
    assert "went stale" in rec.excluded["ft"] and "0.10 vs 0.80" in rec.excluded["ft"]


def test_a_retrieving_arm_is_never_called_stale():
    """rag reads the updated index: a lower score than raft on the changed facts is quality, not staleness."""
    fresh = {"arms": {"rag": {"metrics": {"f1": 0.26}}, "raft": {"metrics": {"f1": 0.92}},
                      "ft": {"metrics": {"f1": 0.17}}},
             "comparisons": [comp("rag", "raft", -0.66, 0.001), comp("ft", "raft", -0.75, 0.001)]}
    r = results_with({"rag": arm(0.13), "raft": arm(0.5), "ft": arm(0.06, retrieval=False)},
                     [comp("raft", "rag", 0.37, 0.001), comp("raft", "ft", 0.44, 0.001)], freshness=fresh)
    rec = recommend(r, Scenario(knowledge_change="monthly"))
    assert rec.arm == "raft"
    assert "rag" not in rec.excluded
    assert "went stale" in rec.excluded["ft"]


def test_frequent_change_without_freshness_data_rules_out_closed_book_tuned():
    r = results_with({"ft": arm(0.8, retrieval=False, train_usd=0.1, train_s=10), "rag": arm(0.5)},
                     [comp("ft", "rag", 0.3, 0.001)])
    assert recommend(r, Scenario(knowledge_change="daily")).arm == "rag"
    assert recommend(r, Scenario(knowledge_change="monthly")).arm == "ft"


def test_training_budget_counts_retraining():
    r = results_with({"rag": arm(0.5), "raft": arm(0.7, train_usd=2.0, train_s=100)}, [comp("raft", "rag", 0.2, 0.001)])
    assert recommend(r, Scenario(knowledge_change="monthly", training_budget_usd=5.0)).arm == "raft"
    rec = recommend(r, Scenario(knowledge_change="daily", training_budget_usd=5.0))  # 30 × $2 = $60 a month
    assert rec.arm == "rag"
    assert "$60.00 per month" in rec.excluded["raft"]


def test_constraints_relaxed_when_nothing_survives():
    r = results_with({"rag": arm(0.5, p95=900), "raft": arm(0.7, p95=950, train_usd=0.1, train_s=10)},
                     [comp("raft", "rag", 0.2, 0.001)])
    rec = recommend(r, Scenario(latency_budget_ms=100))
    assert rec.arm == "raft"
    assert any(x.startswith("no arm meets every constraint; relaxed") for x in rec.reasons)


def test_find_comparison_flips_orientation():
    r = results_with({}, [comp("raft", "rag", 0.2, 0.01)])
    flipped = find_comparison(r, "rag", "raft", "f1")
    assert flipped.delta == -0.2 and flipped.a == "rag" and flipped.b == "raft"
    assert find_comparison(r, "rag", "raft", "exact_match") is None


def test_scenario_validation():
    with pytest.raises(ValidationError):
        Scenario(knowledge_change="hourly")
    with pytest.raises(ValidationError):
        Scenario(latency_budget_ms=-5)


def test_fake_run_recommendations(fake_run_dir):
    results = json.loads((fake_run_dir / "results.json").read_text())
    default = recommend(results, Scenario())
    assert default.arm == "raft"
    assert set(default.excluded) == {"base", "ft"}  # stale on the changed facts
    frugal = recommend(results, Scenario(knowledge_change="daily", training_budget_usd=0.0, needs_citations=True))
    assert frugal.arm == "rag"
    assert default.to_dict()["arm"] == results["recommendation"]["arm"]


def test_payback_table_hand_computed():
    from ragtune.report.recommend import payback_table

    r = results_with({"rag": arm(0.5, cost=0.03), "ft": arm(0.6, cost=0.01, retrieval=False, train_usd=2.0, train_s=60),
                      "raft": arm(0.7, cost=0.04, train_usd=1.0, train_s=60), "base": arm(0.1, cost=0.01)}, [])
    rows = {row["arm"]: row for row in payback_table(r, Scenario(queries_per_day=1000, knowledge_change="weekly"))}
    assert set(rows) == {"ft", "raft"}  # untuned arms have nothing to pay back
    assert rows["ft"]["saving_per_1k_usd"] == pytest.approx(0.02)
    assert rows["ft"]["payback_queries"] == pytest.approx(100_000)  # $2 / $0.02 per 1k
    assert rows["ft"]["payback_days"] == pytest.approx(100.0)
    assert rows["ft"]["retraining_per_month_usd"] == pytest.approx(2.0 * 30 / 7)
    assert rows["raft"]["payback_days"] is None  # costs more per query than rag: never pays back on cost
    assert payback_table(results_with({"ft": arm(0.6)}, [])) == []  # no rag baseline


def _search_info(test_f1, default_f1, searched=True):
    params, defaults = ({"k": 5}, {"k": 3}) if searched else ({"k": 3}, {"k": 3})
    return {"params": params, "default_params": defaults, "test": {"f1": test_f1},
            "default_test": {"f1": default_f1}, "gain_f1": test_f1 - default_f1}


def test_a_searched_run_says_what_tuning_gained_each_arm():
    r = results_with({"rag": arm(0.62, cost=0.01), "raft": arm(0.55, cost=0.02, train_usd=1.0, train_s=100)},
                     [comp("rag", "raft", 0.07, 0.001)])
    r["search"] = {"validation_questions": 30, "arms": {"rag": _search_info(0.62, 0.48),
                                                       "raft": _search_info(0.55, 0.55, searched=False)}}
    rec = recommend(r, Scenario())
    assert rec.arm == "rag" and "rag has the best F1" in rec.reasons[0]
    assert rec.reasons[1] == ("every arm is compared with the settings searched for it on 30 validation questions; "
                              "gain from tuning on the test questions (F1, searched minus default settings): "
                              "rag +0.140 (0.480 → 0.620), raft +0.000 (its defaults won the search)")
    # raft led at the defaults (0.55 vs 0.48): the search changed which arm leads
    assert rec.reasons[2] == "at their default settings raft led on F1 (0.550); tuned, rag leads (0.620)"
    r["search"]["arms"]["rag"] = _search_info(0.62, 0.58)
    same_lead = recommend(r, Scenario()).reasons
    assert "rag +0.040 (0.580 → 0.620)" in same_lead[1] and not any("at their default" in x for x in same_lead)
    plain = recommend(results_with(r["arms"], r["comparisons"]), Scenario())
    assert not any("gain from tuning" in reason for reason in plain.reasons)  # an unsearched run says nothing of it


def test_a_winning_tuned_retriever_arm_says_tune_the_retriever_and_what_its_training_costs():
    r = results_with({"rag": arm(0.5, cost=0.01), "rag_tr": arm(0.6, cost=0.01, train_usd=0.5, train_s=300)},
                     [comp("rag_tr", "rag", 0.1, 0.001)])
    r["arms"]["rag"]["metrics"]["retrieval_recall_at_k"] = 0.7
    r["arms"]["rag_tr"]["metrics"]["retrieval_recall_at_k"] = 0.85
    rec = recommend(r, Scenario())
    assert rec.arm == "rag_tr"
    assert ("tune the retriever: the embedder trained on questions synthesised from your own chunks finds the gold "
            "passage more often (recall@k 0.85 vs 0.70 for rag); re-tune the embedder and re-embed when the "
            "documents change much") in rec.reasons
    assert any("rag_tr's training ($0.5) is bought for quality" in x for x in rec.reasons)
    r["arms"]["rag_tr"]["metrics"]["retrieval_recall_at_k"] = 0.7  # no better: the note does not claim it is
    assert any(x.startswith("the tuned embedder finds the gold passage no more often than rag's (recall@k 0.70 vs "
                            "0.70)") for x in recommend(r, Scenario()).reasons)


def test_tuned_arms_come_from_the_arm_table_not_their_training_seconds():
    """A tuned-retriever arm whose embedder folder recorded no training time is still a tuned arm (payback row)."""
    from ragtune.report.recommend import payback_table

    r = results_with({"rag": arm(0.5, cost=0.03), "rag_tr": arm(0.6, cost=0.03), "raft_tr": arm(0.6, cost=0.03)}, [])
    assert {row["arm"] for row in payback_table(r)} == {"rag_tr", "raft_tr"}
