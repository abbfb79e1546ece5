"""Two runs side by side: metrics per arm with deltas, paired tests between runs, setups and recommendations.

Haystack-style comparative report: the same arm in run A and run B is compared question by question (on
the questions both runs share) with the same paired test the single-run report uses.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from ragtune.evaluate.run_files import read_results, write_text_atomic
from ragtune.evaluate.stats import paired_test
from ragtune.report.render import EFFICIENCY_COLUMNS, QUALITY_COLUMNS, _environment, _flatten, format_value

COMPARISON_FILE = "comparison.html"


def _format_delta(delta: float, kind: str) -> str:
    sign = "+" if delta >= 0 else "−"
    return sign + format_value(abs(delta), kind)


def compare_runs(results_a: dict[str, Any], results_b: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Per metric and arm: value in A, in B and B − A (coloured by better/worse); per arm a paired test
    of the primary metric, B vs A, on the questions both runs share."""
    primary = results_a.get("primary_metric", "f1")
    arms_a, arms_b = results_a.get("arms") or {}, results_b.get("arms") or {}
    arms = list(arms_a) + [a for a in arms_b if a not in arms_a]
    groups = []
    for heading, columns in (("Answer quality", QUALITY_COLUMNS), ("Efficiency and cost", EFFICIENCY_COLUMNS)):
        rows = []
        for key, label, kind, better in columns:
            cells = []
            for arm in arms:
                va = ((arms_a.get(arm) or {}).get("metrics") or {}).get(key)
                vb = ((arms_b.get(arm) or {}).get("metrics") or {}).get(key)
                delta = vb - va if va is not None and vb is not None else None
                improved = (delta > 0) == (better == "high") if delta and better else None
                cells.append({"a": format_value(va, kind), "b": format_value(vb, kind),
                              "delta": "" if delta is None else _format_delta(delta, kind), "improved": improved})
            if any(c["a"] != "–" or c["b"] != "–" for c in cells):
                rows.append({"key": key, "label": label, "cells": cells})
        groups.append({"heading": heading, "rows": rows})
    tests = {arm: _paired_between_runs(results_a, results_b, arm, primary, seed) for arm in arms}
    return {"primary": primary, "arms": arms, "groups": groups, "tests": tests,
            "only_a": [a for a in arms if a not in arms_b], "only_b": [a for a in arms if a not in arms_a]}


def _paired_between_runs(results_a: dict, results_b: dict, arm: str, metric: str, seed: int) -> dict | None:
    qa = (results_a.get("per_question") or {}).get(arm) or {}
    qb = (results_b.get("per_question") or {}).get(arm) or {}
    # Freshness questions ("fresh:" keys) are a different test set; the paired test is on the main questions.
    shared = [q for q in qa if q in qb and not q.startswith("fresh:")
              and qa[q].get(metric) is not None and qb[q].get(metric) is not None]
    if len(shared) < 2:
        return None
    test = paired_test([qb[q][metric] for q in shared], [qa[q][metric] for q in shared], seed=seed)
    alpha = results_a.get("alpha", 0.05)
    return {"delta": test.delta, "ci95": list(test.ci), "p_value": test.p_value, "n": test.n,
            "significant": test.significant(alpha)}


def render_comparison(run_a: str | Path, run_b: str | Path, out: str | Path | None = None, seed: int = 0) -> Path:
    """Write an HTML page comparing two run folders (default: run_b/comparison.html); return its path."""
    from markupsafe import Markup

    from ragtune.report.figures import figure_div, plotly_js

    a, b = Path(run_a), Path(run_b)
    results_a, results_b = read_results(a), read_results(b)
    comparison = compare_runs(results_a, results_b, seed=seed)
    context = {
        "title": f"ragtune: {a.resolve().name} vs {b.resolve().name}",
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "name_a": a.resolve().name, "name_b": b.resolve().name,
        "path_a": str(a.resolve()), "path_b": str(b.resolve()),
        "comparison": comparison,
        "rec_a": results_a.get("recommendation") or {}, "rec_b": results_b.get("recommendation") or {},
        "setup_diff": _setup_diff(results_a, results_b),
        "figure": Markup(figure_div(_primary_figure(results_a, results_b, a.resolve().name, b.resolve().name), "fig-runs")),
        "plotly_js": Markup(plotly_js()),
    }
    html = _environment().get_template("compare.html.j2").render(**context)
    target = Path(out) if out is not None else b / COMPARISON_FILE
    return write_text_atomic(target, html)


def _setup_diff(results_a: dict, results_b: dict) -> list[dict[str, str]]:
    """Settings (setup, scenario, cost model) that differ between the runs."""
    rows = []
    for section in ("setup", "scenario", "cost_model"):
        fa = dict(_flatten(results_a.get(section) or {}))
        fb = dict(_flatten(results_b.get(section) or {}))
        for key in list(fa) + [k for k in fb if k not in fa]:
            if fa.get(key) != fb.get(key):
                rows.append({"key": f"{section}.{key}", "a": fa.get(key, "–"), "b": fb.get(key, "–")})
    return rows


def _primary_figure(results_a: dict, results_b: dict, name_a: str, name_b: str):
    import plotly.graph_objects as go

    from ragtune.report.figures import _error, _layout

    primary = results_a.get("primary_metric", "f1")
    arms = list(results_a.get("arms") or {}) + [x for x in results_b.get("arms") or {} if x not in (results_a.get("arms") or {})]
    fig = go.Figure()
    for name, results, colour in ((name_a, results_a, "#9aa9c2"), (name_b, results_b, "#2f6fde")):
        info = results.get("arms") or {}
        values = [(info.get(arm) or {}).get("metrics", {}).get(primary) for arm in arms]
        cis = [(info.get(arm) or {}).get("ci95", {}).get(primary) for arm in arms]
        fig.add_trace(go.Bar(name=name, x=arms, y=values, marker_color=colour, error_y=_error(values, cis)))
    return _layout(fig, f"{primary} per arm, both runs", barmode="group", yaxis={"range": [0, 1.05], "title": primary})
