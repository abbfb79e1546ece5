"""Render a run folder (results.json + predictions.jsonl) into one self-contained report.html.

The page works offline: plotly.js is inlined once, the figures are inline <div>s, CSS and the small
drill-down script are inline too; nothing is fetched from a CDN. Templates (jinja2, autoescaped) only
render; every number is prepared here.
"""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path
from typing import Any

from ragtune.evaluate.answer_metrics import exact_match, f1
from ragtune.evaluate.run_files import REPORT_FILE, read_predictions, read_results, write_text_atomic

logger = logging.getLogger(__name__)

DEFAULT_MAX_QUESTIONS = 500
SOURCE_CHARS = 600

# (key, label, kind, better): kind selects the formatter; better marks the best cell per column.
QUALITY_COLUMNS = [
    ("exact_match", "Exact match", "score", "high"),
    ("f1", "F1", "score", "high"),
    ("semantic_similarity", "Semantic sim.", "score", "high"),
    ("faithfulness", "Faithfulness", "score", "high"),
    ("citation_precision", "Citation precision", "score", "high"),
    ("retrieval_recall_at_k", "Recall@k", "score", "high"),
]
EFFICIENCY_COLUMNS = [
    ("latency_ms_p50", "p50 ms", "ms", "low"),
    ("latency_ms_p95", "p95 ms", "ms", "low"),
    ("retrieve_ms_p50", "retrieval p50", "ms", None),
    ("generate_ms_p50", "generation p50", "ms", None),
    ("tokens_per_s", "tokens/s", "rate", "high"),
    ("peak_memory_mb", "peak MiB", "int", None),
    ("cost_per_1k_queries", "$ / 1k queries", "usd", "low"),
    ("training_s", "training time", "seconds", None),
    ("training_usd", "training $", "usd", None),
    ("indexing_usd", "indexing $", "usd", None),
]
TABLE_COLUMNS = QUALITY_COLUMNS + EFFICIENCY_COLUMNS


def format_value(value: Any, kind: str) -> str:
    """A metric value as the tables show it ('–' when undefined)."""
    if value is None:
        return "–"
    if kind == "score":
        return f"{value:.3f}"
    if kind == "ms":
        return f"{value:,.0f}"
    if kind == "rate":
        return f"{value:,.1f}"
    if kind == "usd":
        return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"
    if kind == "seconds":
        return f"{value / 60:,.1f} min" if value >= 60 else f"{value:,.0f} s"
    if kind == "int":
        return f"{value:,.0f}"
    return str(value)


def metrics_table(results: dict, columns: list[tuple] | None = None) -> dict[str, Any]:
    """Header and rows of a metrics table (default: every column), with the best cell per column flagged."""
    arms = results.get("arms") or {}
    columns = [c for c in (columns or TABLE_COLUMNS) if any(arms[a]["metrics"].get(c[0]) is not None for a in arms)]
    best: dict[str, Any] = {}
    for key, _label, _kind, better in columns:
        values = [arms[a]["metrics"].get(key) for a in arms if arms[a]["metrics"].get(key) is not None]
        if better and len(values) > 1 and len(set(values)) > 1:
            best[key] = max(values) if better == "high" else min(values)
    rows = []
    for arm, info in arms.items():
        cells = []
        for key, _label, kind, _better in columns:
            value = info["metrics"].get(key)
            ci = info.get("ci95", {}).get(key)
            cells.append({
                "text": format_value(value, kind),
                "ci": f"{ci[0]:.2f}–{ci[1]:.2f}" if ci and kind == "score" else "",
                "best": key in best and value == best[key],
            })
        rows.append({"arm": arm, "n": info.get("n"), "cells": cells})
    return {"columns": [{"key": c[0], "label": c[1]} for c in columns], "rows": rows}


def significance_notes(results: dict, section: str = "comparisons") -> list[dict[str, Any]]:
    """One sentence per paired comparison, primary metric first: 'rag vs base: +0.12 F1, p=0.003, significant'."""
    if section == "comparisons":
        source = results.get("comparisons") or []
    else:
        source = (results.get("freshness") or {}).get("comparisons") or []
    primary = results.get("primary_metric", "f1")
    label = {"f1": "F1", "exact_match": "EM", "semantic_similarity": "semantic sim.", "faithfulness": "faithfulness"}
    notes = []
    for c in sorted(source, key=lambda c: c["metric"] != primary):
        p = c.get("p_value_holm", c["p_value"])
        significant = c.get("significant", p < results.get("alpha", 0.05))
        ci = c.get("ci95")
        ci_text = f" (95% CI {ci[0]:+.2f} to {ci[1]:+.2f})" if ci else ""
        notes.append({
            "a": c["a"], "b": c["b"], "metric": c["metric"], "primary": c["metric"] == primary,
            "significant": significant,
            "text": (f"{c['a']} vs {c['b']}: {c['delta']:+.3f} {label.get(c['metric'], c['metric'])}{ci_text}, "
                     f"p={p:.3f}{' (Holm)' if 'p_value_holm' in c else ''}, "
                     f"{'significant' if significant else 'not significant'}"),
        })
    return notes


def _score(results: dict, row: dict) -> dict[str, float]:
    key = f"fresh:{row['qid']}" if row.get("freshness") else row["qid"]
    stored = ((results.get("per_question") or {}).get(row["arm"]) or {}).get(key)
    if stored and stored.get("f1") is not None:
        return {"f1": stored["f1"], "em": stored.get("exact_match") or 0.0}
    return {"f1": f1(row["answer"], row["gold_answers"]), "em": exact_match(row["answer"], row["gold_answers"])}


def drilldown(results: dict, rows: list[dict], max_questions: int = DEFAULT_MAX_QUESTIONS) -> dict[str, Any]:
    """Questions with every arm's answer side by side, graded, with the sources each arm saw."""
    arms = list(results.get("arms") or dict.fromkeys(r["arm"] for r in rows))
    for r in rows:
        if r["arm"] not in arms:
            arms.append(r["arm"])
    questions: dict[tuple, dict] = {}
    for row in rows:
        key = (bool(row.get("freshness")), row["qid"])
        if key not in questions:
            if len(questions) >= max_questions:
                continue
            questions[key] = {"qid": row["qid"], "question": row.get("question", ""), "golds": row["gold_answers"],
                              "freshness": key[0], "answers": {}}
        score = _score(results, row)
        golds_docs, golds_chunks = set(row.get("gold_doc_ids") or []), set(row.get("gold_chunk_ids") or [])
        sources = [{
            "number": c.get("number", i + 1), "title": c.get("title") or c.get("doc_id", ""),
            "doc_id": c.get("doc_id", ""), "chunk_id": c.get("chunk_id", ""),
            "text": (c.get("text") or "")[:SOURCE_CHARS] + ("…" if len(c.get("text") or "") > SOURCE_CHARS else ""),
            "score": c.get("score"), "cited": bool(c.get("cited")),
            "gold": c.get("chunk_id") in golds_chunks or (not golds_chunks and c.get("doc_id") in golds_docs),
        } for i, c in enumerate(row.get("citations") or [])]
        grade = "ok" if score["em"] >= 1 else "part" if score["f1"] > 0 else "bad"
        questions[key]["answers"][row["arm"]] = {
            "answer": row["answer"], "grade": grade, "f1": score["f1"], "sources": sources,
            "ms": row.get("retrieve_ms", 0.0) + row.get("generate_ms", 0.0),
        }
    items = list(questions.values())
    for q in items:
        grades = {a["grade"] for a in q["answers"].values()}
        q["disagree"] = len(grades) > 1
        # what the filter box searches: the question, its id, gold answers and every arm's answer (not sources)
        q["search"] = " ".join([q["qid"], q["question"], *q["golds"], *(a["answer"] for a in q["answers"].values())]).lower()
    total = len({(bool(r.get("freshness")), r["qid"]) for r in rows})
    return {"arms": arms, "questions": items, "shown": len(items), "total": total}


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ragtune.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2"), default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["value"] = format_value
    return env


def report_context(results: dict, rows: list[dict], title: str | None = None,
                   max_questions: int = DEFAULT_MAX_QUESTIONS) -> dict[str, Any]:
    """Everything the report template renders, prepared as plain values."""
    from ragtune.report.figures import arm_colour, figure_divs

    arms = list((results.get("arms") or {}))
    setup = results.get("setup") or {}
    return {
        "title": title or "ragtune comparison report",
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "results": results,
        "setup_items": _flatten(setup),
        "colours": {a: arm_colour(a, i) for i, a in enumerate(arms)},
        "primary": results.get("primary_metric", "f1"),
        "recommendation": results.get("recommendation") or {},
        "tables": [("Answer quality", metrics_table(results, QUALITY_COLUMNS)),
                   ("Efficiency and cost", metrics_table(results, EFFICIENCY_COLUMNS))],
        "notes": significance_notes(results),
        "fresh_notes": significance_notes(results, "freshness"),
        "figures": figure_divs(results, rows) if arms else {},
        "drill": drilldown(results, rows, max_questions),
        "scenario_items": _flatten(results.get("scenario") or {}),
        "cost_items": _flatten(results.get("cost_model") or {}),
        "warnings": results.get("warnings") or [],
        "payback": _payback_rows(results),
        "search": search_sections(results),
    }


def search_sections(results: dict) -> list[dict[str, Any]]:
    """One block per arm whose settings were searched (`compare --search`): the space, the chosen settings,
    the winner's validation vs test F1 (their difference: how much the search over-fitted validation) and the
    test gain over the arm's defaults; [] for an unsearched run."""
    sections = []
    for arm, info in ((results.get("search") or {}).get("arms") or {}).items():
        chosen, defaults = info.get("params") or {}, info.get("default_params") or {}
        space = info.get("space") or {}
        gain = info.get("gain_f1")
        validation_f1, test_f1 = (info.get("validation") or {}).get("f1"), (info.get("test") or {}).get("f1")
        points = info.get("trial_results") or []
        sections.append({
            "arm": arm,
            "settings": [{"name": name, "value": value, "default": defaults.get(name),
                          "changed": defaults.get(name) != value,
                          "over": ", ".join(str(v) for v in space.get(name) or ())} for name, value in chosen.items()],
            "validation_f1": format_value(validation_f1, "score"),
            "test_f1": format_value(test_f1, "score"),
            "overfit": "–" if validation_f1 is None or test_f1 is None else f"{validation_f1 - test_f1:+.3f}",
            "default_test_f1": format_value((info.get("default_test") or {}).get("f1"), "score"),
            "gain": "–" if gain is None else f"{gain:+.3f}" + _on_test(info.get("test_versus_defaults")),
            "trials": info.get("trials"), "feasible": info.get("feasible_trials"), "sampler": info.get("sampler"),
            "max_p95_ms": info.get("max_p95_ms"), "max_cost_per_1k": info.get("max_cost_per_1k"),
            "plotted": len(points), "infeasible": sum(1 for t in points if not t.get("feasible")),
            "versus": describe_versus_defaults(info.get("versus_defaults")),
            "index": _rechunked_note(info.get("index")), "skipped": info.get("skipped_trials") or 0,
            "pruned": info.get("pruned_trials") or 0, "training": _training_note(info.get("training")),
        })
    return sections


def _training_note(training: dict | None) -> str:
    """The arm's training in the search (workflows.trained_adapters): the chosen adapter and what training
    cost, or why its training settings were not searched; "" for an arm without an adapter."""
    if not training:
        return ""
    if not training.get("searched"):
        return f"Training: {training.get('reason', 'not searched')}."
    budget = training.get("budget_s")
    over = training.get("over_budget_trials") or 0
    return (f"Training: {training['epochs']} epoch(s) at lr {training['lr']:g}, adapter {training['adapter']} in the "
            f"search folder; the search trained {training.get('adapters_trained', 0)} adapter(s) for this arm in "
            f"{training.get('train_s', 0.0):.0f} s"
            + (f" of a {budget:.0f} s budget ({over} trial(s) skipped over it)" if budget is not None else "") + ".")


def _rechunked_note(index: dict | None) -> str:
    """Which chunking the winner answered with, when its chunk size re-chunked the index (workflows.chunk_indexes)."""
    if not index or not index.get("rechunked"):
        return ""
    return (f"Answered on the index re-chunked at {index['chunk_tokens']} tokens (overlap {index['overlap_tokens']}): "
            f"{index['index']} in the search folder; its test questions are judged by gold document.")


def _on_test(versus: dict | None) -> str:
    """The winner vs the defaults on the test questions, paired (workflows.tune: test_versus_defaults)."""
    if not versus:
        return ""
    low, high = versus["ci95"]
    return f" (95% CI {low:+.3f} to {high:+.3f}, paired p={versus['p_value']:.3f} on {versus['n']} test questions)"


def describe_versus_defaults(versus: dict | None) -> str:
    """How the search's best trial fared against the defaults on validation (workflows.search._confirmed)."""
    if not versus:
        return ""
    figures = f"{versus['delta_f1']:+.3f} F1 on {versus['n']} validation questions, paired p={versus['p_value']:.3f}"
    alpha = f"{versus['alpha']:.3g}"
    if versus.get("compared", 1) > 1:  # Bonferroni over the trials the best was picked from (workflows.search)
        alpha += f" ({versus['family_alpha']:g} over the {versus['compared']} trials it was the best of)"
    if versus["switched"]:
        return f"Trial {versus['trial']} replaced the defaults: {figures} < {alpha}."
    kept = (f"The defaults were kept: the best trial ({versus['trial']}) led by {figures}, "
            f"not below {alpha} — too little evidence to change settings.")
    if versus.get("detectable_f1") and versus["delta_f1"] > 0:  # what this split could confirm (search._confirmed)
        kept += (f" {versus['n']} validation questions confirm a lead of about {versus['detectable_f1']:+.3f} F1 "
                 f"(80% power at that level); more questions or a larger --validation-share confirm smaller ones.")
    return kept


def _payback_rows(results: dict) -> list[dict[str, str]]:
    from ragtune.report.recommend import Scenario, payback_table

    try:
        scenario = Scenario(**(results.get("scenario") or {}))
    except ValueError:  # a results.json from another version: fall back to the default scenario
        scenario = Scenario()
    return [{
        "arm": row["arm"],
        "saving": format_value(row["saving_per_1k_usd"], "usd") if row["saving_per_1k_usd"] >= 0
        else "−" + format_value(-row["saving_per_1k_usd"], "usd"),
        "training": format_value(row["training_usd"], "usd"),
        "days": "never" if row["payback_days"] is None and row["payback_queries"] is None
        else "–" if row["payback_days"] is None else f"{row['payback_days']:,.1f} days",
        "retraining": format_value(row["retraining_per_month_usd"], "usd"),
    } for row in payback_table(results, scenario)]


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, str]]:
    items = []
    for key, value in data.items():
        if key == "arms" and isinstance(value, dict) and prefix == "":
            for arm, sub in value.items():
                items.extend(_flatten(sub if isinstance(sub, dict) else {"": sub}, f"arm {arm}."))
        elif isinstance(value, dict):
            items.extend(_flatten(value, f"{prefix}{key}."))
        else:
            items.append((f"{prefix}{key}".rstrip("."), value if isinstance(value, str) else str(value)))
    return items


def render_html(results: dict, rows: list[dict], title: str | None = None,
                max_questions: int = DEFAULT_MAX_QUESTIONS) -> str:
    """The report page as one HTML string (plotly.js inlined once)."""
    from markupsafe import Markup

    from ragtune.report.figures import plotly_js

    context = report_context(results, rows, title=title, max_questions=max_questions)
    context["figures"] = {k: Markup(v) for k, v in context["figures"].items()}
    context["plotly_js"] = Markup(plotly_js())
    return _environment().get_template("report.html.j2").render(**context)


def render_report(run_dir: str | Path, out: str | Path | None = None, title: str | None = None,
                  max_questions: int = DEFAULT_MAX_QUESTIONS) -> Path:
    """Read run_dir/results.json and predictions.jsonl, write report.html (or `out`) atomically; return its path."""
    run = Path(run_dir)
    results = _recommended(read_results(run))
    rows = read_predictions(run)
    html = render_html(results, rows, title=title or f"ragtune report — {run.resolve().name}", max_questions=max_questions)
    target = Path(out) if out is not None else run / REPORT_FILE
    logger.info("writing %s (%d KiB)", target, len(html) // 1024)
    return write_text_atomic(target, html)


def _recommended(results: dict[str, Any]) -> dict[str, Any]:
    """results.json as rendered: read through RunResults (older runs included), with a recommendation computed
    for its scenario when the run has none."""
    from ragtune.evaluate.results import RunResults
    from ragtune.report.recommend import with_recommendation

    typed = RunResults.from_dict(results)
    return (typed if typed.recommendation is not None else with_recommendation(typed, typed.scenario)).to_dict()
