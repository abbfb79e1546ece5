"""Which arm to deploy: measured results combined with the user's scenario.

The rules follow the trade-offs the field documents (Ovadia et al. 2023; Zhang et al. 2024, RAFT;
Balaguer et al. 2024): retrieval for knowledge that changes and for answers that must cite sources;
fine-tuning for static knowledge, style and format at low latency; both when quality matters and the
training budget allows retraining as often as the knowledge changes.

1. Hard constraints exclude arms: citations needed → closed-book arms out; knowledge that changes →
   arms that went stale on the freshness questions out (or, without freshness data, closed-book tuned arms
   when it changes weekly or daily); training cost per month over the budget → out; p95 latency over the
   budget → out. If nothing survives, the constraints are relaxed in reverse order and the reasons say so.
2. Among the survivors the best arm on the primary metric (F1) leads; every arm whose difference from it is
   not statistically significant (paired test, Holm-adjusted over the comparisons with the best arm) is tied
   with it.
3. Among tied arms the cheapest per month (serving at the stated traffic + retraining) wins if it saves at
   least 10% over the best arm; otherwise the best arm stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ragtune.arms import ARMS, untuned_retriever_sibling
from ragtune.evaluate.cost import RETRAINS_PER_MONTH, Scenario, payback
from ragtune.evaluate.results import ArmMetrics, Comparison, Recommendation, RunResults
from ragtune.evaluate.stats import holm

STALE_RATIO = 0.5  # without a significance test, an arm at < half the best freshness score is stale
CHEAPER_BY = 0.10  # among arms tied on quality, switch to a cheaper one only if it saves at least 10%


__all__ = ["Recommendation", "Scenario", "find_comparison", "payback_table", "recommend", "with_recommendation"]


def _typed(results: RunResults | Mapping[str, Any]) -> RunResults:
    """RunResults as they are, or read from a results.json dict (this version's or an older one's)."""
    return results if isinstance(results, RunResults) else RunResults.from_dict(results)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _money(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"${value:,.2f}" if value >= 0.995 else f"${value:.4f}".rstrip("0").rstrip(".")


def find_comparison(results: RunResults | Mapping[str, Any], a: str, b: str, metric: str,
                    section: str = "comparisons") -> Comparison | None:
    """The paired comparison of arms a and b on metric, oriented as a − b (None if not computed)."""
    return _typed(results).comparison(a, b, metric, section)


def _is_tuned(arm: str, info: ArmMetrics) -> bool:
    spec = ARMS.get(arm)
    return (info.metric("training_s") or 0) > 0 or (spec is not None and spec.tuned)


def _monthly_training(info: ArmMetrics, scenario: Scenario) -> float:
    """Training spend per month: each change retrains; static knowledge amortises one run over a year."""
    usd = info.metric("training_usd") or 0.0
    per_month = RETRAINS_PER_MONTH[scenario.knowledge_change]
    return usd * per_month if per_month > 0 else usd / 12


def _monthly_cost(info: ArmMetrics, scenario: Scenario) -> float:
    serving = (info.metric("cost_per_1k_queries") or 0.0) * scenario.queries_per_day * 30 / 1000
    return serving + _monthly_training(info, scenario)


def _stale_arms(results: RunResults, arms: list[str], primary: str, alpha: float) -> dict[str, str]:
    """Closed-book arms that did significantly worse on changed facts than the best arm there (paired test).

    Without a paired test for an arm, it is stale below STALE_RATIO × the best freshness score.
    """
    fresh = results.freshness.arms if results.freshness is not None else {}
    scored = {a: fresh[a].metric(primary) for a in arms if a in fresh and fresh[a].metric(primary) is not None}
    if not scored:
        return {}
    best = max(scored, key=scored.get)
    stale = {}
    for arm, value in scored.items():
        # Only closed-book arms can go stale: a retrieving arm reads the updated index, so a low score there is
        # a quality gap (the main comparison covers it), not stale knowledge.
        if arm == best or (arm in results.arms and results.arms[arm].uses_retrieval):
            continue
        tests = [t for t in (results.comparison(arm, other, primary, section="freshness") for other in scored)
                 if t is not None and t.b != arm]
        losing = [t for t in tests if t.delta < 0 and t.is_significant(alpha)]
        if losing:
            t = losing[0]
            stale[arm] = (f"went stale on the changed facts: {primary.upper()} {_fmt(value)} vs "
                          f"{_fmt(scored[t.b])} for {t.b} (p={_fmt(t.adjusted_p, 3)})")
        elif not tests and value < STALE_RATIO * scored[best]:
            stale[arm] = (f"went stale on the changed facts: {primary.upper()} {_fmt(value)} vs "
                          f"{_fmt(scored[best])} for {best}")
    return stale


def _constraints(results: RunResults, scenario: Scenario, arms: list[str], primary: str,
                 alpha: float) -> list[dict[str, str]]:
    """One {arm: reason} dict per rule, in the order they are relaxed last-first."""
    info = results.arms
    citations = {a: "closed-book: cannot cite sources, and citations are required"
                 for a in arms if scenario.needs_citations and not info[a].uses_retrieval}
    freshness: dict[str, str] = {}
    if scenario.knowledge_change != "static":
        freshness = _stale_arms(results, arms, primary, alpha)
        if results.freshness is None and scenario.knowledge_change in ("weekly", "daily"):
            for a in arms:
                if not info[a].uses_retrieval and _is_tuned(a, info[a]):
                    freshness[a] = (f"closed-book and tuned: knowledge changes {scenario.knowledge_change}, "
                                    "so its answers go stale between retrainings")
    budget: dict[str, str] = {}
    if scenario.training_budget_usd is not None:
        for a in arms:
            spend = _monthly_training(info[a], scenario) if scenario.knowledge_change != "static" \
                else info[a].metric("training_usd") or 0.0
            if _is_tuned(a, info[a]) and spend > scenario.training_budget_usd:
                budget[a] = (f"training costs {_money(spend)} per month with {scenario.knowledge_change} changes, "
                             f"over the {_money(scenario.training_budget_usd)} budget")
    latency: dict[str, str] = {}
    if scenario.latency_budget_ms is not None:
        for a in arms:
            p95 = info[a].metric("latency_ms_p95")
            if p95 is not None and p95 > scenario.latency_budget_ms:
                latency[a] = f"p95 latency {p95:.0f} ms is over the {scenario.latency_budget_ms:.0f} ms budget"
    return [citations, freshness, budget, latency]


def _p_values_against(results: RunResults, best: str, others: list[str], metric: str) -> dict[str, float]:
    """Paired-test p-values of each other arm against the best one, Holm-adjusted within THIS family (the
    k-1 comparisons the decision rests on, not every pair of arms). An arm without a test counts as tied."""
    tested = {a: t.p_value for a in others if (t := results.comparison(a, best, metric)) is not None}
    adjusted = dict(zip(tested, holm(list(tested.values())))) if tested else {}
    return {a: adjusted.get(a, 1.0) for a in others}


def with_recommendation(results: RunResults | Mapping[str, Any], scenario: Scenario | None = None) -> RunResults:
    """The scored results of a run (ragtune.evaluate.scoring.score_run) with their recommendation added
    (`.to_dict()` is then results.json as compare writes it)."""
    typed = _typed(results)
    return typed.with_recommendation(recommend(typed, scenario))


def recommend(results: RunResults | Mapping[str, Any], scenario: Scenario | None = None) -> Recommendation:
    """The arm to deploy for this scenario, with the reasons a team lead can check against the tables.

    `results` are RunResults, or a results.json dict (read with RunResults.from_dict)."""
    scenario = scenario or Scenario()
    results = _typed(results)
    info = results.arms
    arms = list(info)
    if not arms:
        return Recommendation(arm=None, reasons=("no arm was scored",))
    primary = results.primary_metric
    alpha = results.alpha
    rules = _constraints(results, scenario, arms, primary, alpha)
    reasons: list[str] = []
    active = list(rules)
    while True:
        excluded: dict[str, str] = {}
        for rule in active:
            for arm, why in rule.items():
                excluded.setdefault(arm, why)
        survivors = [a for a in arms if a not in excluded]
        if survivors or not active:
            break
        relaxed = active.pop()
        reasons.append("no arm meets every constraint; relaxed: " + "; ".join(f"{a}: {w}" for a, w in relaxed.items()))

    def quality(a: str) -> float:
        value = info[a].metric(primary)
        return -1.0 if value is None else value

    best = max(survivors, key=quality)
    p_vs_best = _p_values_against(results, best, [a for a in survivors if a != best], primary)
    tied = [best] + [a for a, p in p_vs_best.items() if p >= alpha]
    cheapest = min(tied, key=lambda a: (_monthly_cost(info[a], scenario), info[a].metric("latency_ms_p50") or 0.0))
    # A tie on quality goes to the cheaper arm only when the saving is real (CHEAPER_BY), not rounding noise.
    saving_is_real = _monthly_cost(info[cheapest], scenario) < (1 - CHEAPER_BY) * _monthly_cost(info[best], scenario)
    choice = cheapest if saving_is_real else best
    m = info[choice].metrics
    ci = info[choice].ci95.get(primary)
    ci_text = f" (95% CI {_fmt(ci[0])}–{_fmt(ci[1])})" if ci else ""
    label = primary.replace("_", " ").upper() if primary in ("f1",) else primary.replace("_", " ")
    if choice == best:
        reasons.insert(0, f"{choice} has the best {label} among the eligible arms: {_fmt(m.get(primary))}{ci_text}")
    else:
        reasons.insert(0, f"{choice} ({label} {_fmt(m.get(primary))}{ci_text}) is statistically tied with {best} "
                          f"({_fmt(info[best].metric(primary))}; p={_fmt(p_vs_best[choice], 3)}) "
                          f"and costs less to run")
    for other in survivors:
        if other in tied or other == choice:
            continue
        test = results.comparison(best, other, primary)
        if test is not None:
            p_text = f"p={_fmt(p_vs_best[other], 3)}"
            if best == choice:
                reasons.append(f"{best} beats {other} on {label} by {test.delta:+.2f} ({p_text}, significant)")
            else:
                reasons.append(f"{other} is significantly below {best} on {label} ({-test.delta:+.2f}, {p_text})")
    for other in tied:
        if other == choice:
            continue
        cheaper = _monthly_cost(info[other], scenario) < _monthly_cost(info[choice], scenario)
        reasons.append(f"{other} is not significantly different from {choice} on {label} "
                       + ("and saves less than 10% of the cost" if cheaper else "but costs more"))
    reasons[1:1] = _tuning_reasons(results)
    reasons.append(
        f"serving {choice} costs {_money(m.get('cost_per_1k_queries'))} per 1k queries "
        f"(p50 {_fmt(m.get('latency_ms_p50'), 0)} ms, p95 {_fmt(m.get('latency_ms_p95'), 0)} ms); "
        f"about {_money(_monthly_cost(info[choice], scenario))} per month at {scenario.queries_per_day:,.0f} queries/day "
        f"with {scenario.knowledge_change} knowledge changes"
    )
    reasons.extend(_payback_reasons(info, choice, scenario))
    reasons.append(_field_note(choice, info[choice], scenario, results))
    return Recommendation(arm=choice, reasons=tuple(reasons), excluded=excluded)


def _tuning_reasons(results: RunResults) -> list[str]:
    """With `compare --search`: the arms are compared as tuned, and what tuning gained each one on test."""
    search = results.extra.get("search") or {}
    arms = search.get("arms") or {}
    if not arms:
        return []
    gains = []
    for arm, info in arms.items():
        gain, test, default = info.get("gain_f1"), (info.get("test") or {}).get("f1"), \
            (info.get("default_test") or {}).get("f1")
        if gain is None:
            gains.append(f"{arm} n/a")
        elif info.get("params") == info.get("default_params"):
            gains.append(f"{arm} {gain:+.3f} (its defaults won the search)")
        else:
            gains.append(f"{arm} {gain:+.3f} ({_fmt(default, 3)} → {_fmt(test, 3)})")
    reasons = [f"every arm is compared with the settings searched for it on {search.get('validation_questions')} "
               f"validation questions; gain from tuning on the test questions (F1, searched minus default settings): "
               + ", ".join(gains)]
    tuned = {a: i["test"]["f1"] for a, i in arms.items() if (i.get("test") or {}).get("f1") is not None}
    untuned = {a: i["default_test"]["f1"] for a, i in arms.items()
               if (i.get("default_test") or {}).get("f1") is not None}
    if tuned and untuned:
        lead_tuned, lead_untuned = max(tuned, key=tuned.get), max(untuned, key=untuned.get)
        if lead_tuned != lead_untuned:
            reasons.append(f"at their default settings {lead_untuned} led on F1 ({_fmt(untuned[lead_untuned], 3)}); "
                           f"tuned, {lead_tuned} leads ({_fmt(tuned[lead_tuned], 3)})")
    return reasons


def _payback_reasons(info: Mapping[str, ArmMetrics], choice: str, scenario: Scenario) -> list[str]:
    """When a tuned arm is chosen over plain RAG (or vice versa): does the training pay back?"""
    if "rag" not in info or choice == "rag" or not _is_tuned(choice, info[choice]):
        return []
    tuned, rag = info[choice].metrics, info["rag"].metrics
    saving = (rag.get("cost_per_1k_queries") or 0.0) - (tuned.get("cost_per_1k_queries") or 0.0)
    result = payback(tuned.get("training_usd") or 0.0, saving, scenario.queries_per_day)
    if result.days is None:
        return [f"{choice}'s training ({_money(tuned.get('training_usd'))}) is bought for quality, not cost: it does "
                f"not save serving cost over rag"]
    return [f"{choice} saves {_money(saving)} per 1k queries over rag; its training ({_money(tuned.get('training_usd'))}) "
            f"pays back after {result.days:,.1f} days at {scenario.queries_per_day:,.0f} queries/day"]


def _field_note(choice: str, arm: ArmMetrics, scenario: Scenario, results: RunResults) -> str:
    retrieval, tuned = arm.uses_retrieval, _is_tuned(choice, arm)
    spec = ARMS.get(choice)
    if spec is not None and spec.tuned_retriever:
        return _tuned_retriever_note(choice, results)
    if retrieval and tuned:
        return ("tuning plus retrieval: the tuned model reads its sources better, and retrieval keeps answers current "
                "and cited — worth it while the budget covers retraining")
    if retrieval:
        note = "retrieval follows knowledge changes without retraining and lets answers cite their sources"
        return note + (" (see the freshness chart)" if results.freshness else "")
    if tuned:
        return "a closed-book tuned model suits static knowledge, fixed style and format, and the lowest latency"
    return "the untuned model needs neither an index nor training; the cheapest option when its quality suffices"


def _tuned_retriever_note(choice: str, results: RunResults) -> str:
    """What tuning the retriever did for `choice`: recall@k against the same arm over the untuned index."""
    sibling = untuned_retriever_sibling(choice)
    recall = results.arms[choice].metric("retrieval_recall_at_k")
    before = results.arms[sibling].metric("retrieval_recall_at_k") if sibling in results.arms else None
    care = "; re-tune the embedder and re-embed when the documents change much"
    if recall is None or before is None:
        return "tune the retriever: an embedder trained on questions synthesised from your own chunks" + care
    if recall > before:
        return (f"tune the retriever: the embedder trained on questions synthesised from your own chunks finds the "
                f"gold passage more often (recall@k {_fmt(recall)} vs {_fmt(before)} for {sibling})" + care)
    return (f"the tuned embedder finds the gold passage no more often than {sibling}'s (recall@k {_fmt(recall)} vs "
            f"{_fmt(before)}): {choice} leads on other grounds, and tuning the retriever has not paid here")


def payback_table(results: RunResults | Mapping[str, Any], scenario: Scenario | None = None,
                  baseline: str = "rag") -> list[dict[str, Any]]:
    """For each tuned arm: serving saving per 1k queries over `baseline`, training cost, days to pay back,
    and the retraining bill per month at the scenario's rate of knowledge change. Empty without the baseline."""
    scenario = scenario or Scenario()
    info = _typed(results).arms
    if baseline not in info:
        return []
    base_cost = info[baseline].metric("cost_per_1k_queries") or 0.0
    rows = []
    for arm, entry in info.items():
        m = entry.metrics
        if arm == baseline or not _is_tuned(arm, entry):
            continue
        saving = base_cost - (m.get("cost_per_1k_queries") or 0.0)
        result = payback(m.get("training_usd") or 0.0, saving, scenario.queries_per_day)
        rows.append({"arm": arm, "saving_per_1k_usd": saving, "training_usd": m.get("training_usd") or 0.0,
                     "payback_days": result.days, "payback_queries": result.queries,
                     "retraining_per_month_usd": (m.get("training_usd") or 0.0) * RETRAINS_PER_MONTH[scenario.knowledge_change]})
    return rows
