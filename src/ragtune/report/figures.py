"""Plotly figures of a run, returned as HTML <div>s without the plotly.js library (the page embeds it once).

Each builder takes the results dict (and prediction rows where it needs distributions) and returns a
plotly Figure; `figure_divs` renders them all. Colours are fixed per arm so every chart reads the same.
"""

from __future__ import annotations

from typing import Any

ARM_COLOURS = {"base": "#8c8c8c", "rag": "#2f6fde", "ft": "#e8862e", "ft_rag": "#8e44ad", "raft": "#1e9e6a",
               "rag_tr": "#7fa8ee", "raft_tr": "#7fcfae"}
EXTRA_COLOURS = ["#c0392b", "#16a085", "#d35400", "#2c3e50", "#7f8c8d"]
METRIC_LABELS = {
    "exact_match": "Exact match",
    "f1": "F1",
    "semantic_similarity": "Semantic sim.",
    "faithfulness": "Faithfulness",
    "citation_precision": "Citation precision",
    "retrieval_recall_at_k": "Recall@k",
}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"


def arm_colour(arm: str, position: int = 0) -> str:
    """The fixed colour of an arm (known arms), else one from a small extra palette."""
    return ARM_COLOURS.get(arm, EXTRA_COLOURS[position % len(EXTRA_COLOURS)])


def _layout(fig, title: str, **kwargs: Any):
    # The page puts the title in an <h3> above the figure; it stays in the figure's metadata for exports.
    fig.update_layout(
        meta={"title": title},
        template="plotly_white",
        font={"family": FONT, "size": 12},
        height=360,
        margin={"l": 60, "r": 20, "t": 30, "b": 70},
        legend={"orientation": "h", "yanchor": "top", "y": -0.14, "x": 0},
        **kwargs,
    )
    return fig


def _error(values: list, cis: list) -> dict:
    plus = [None if v is None or c is None else max(c[1] - v, 0.0) for v, c in zip(values, cis)]
    minus = [None if v is None or c is None else max(v - c[0], 0.0) for v, c in zip(values, cis)]
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "thickness": 1.2, "width": 4}


def quality_figure(results: dict):
    """Grouped bars: each quality metric per arm, with 95% bootstrap CI error bars."""
    import plotly.graph_objects as go

    arms = results["arms"]
    metrics = [m for m in METRIC_LABELS if any(arms[a]["metrics"].get(m) is not None for a in arms)]
    fig = go.Figure()
    for i, (arm, info) in enumerate(arms.items()):
        values = [info["metrics"].get(m) for m in metrics]
        cis = [info.get("ci95", {}).get(m) for m in metrics]
        fig.add_trace(go.Bar(
            name=arm, x=[METRIC_LABELS[m] for m in metrics], y=values, marker_color=arm_colour(arm, i),
            error_y=_error(values, cis),
            hovertemplate="%{x}: %{y:.3f}<extra>" + arm + "</extra>",
        ))
    return _layout(fig, "Answer quality per arm (95% CI)", barmode="group", yaxis={"range": [0, 1.05], "title": "score"})


def latency_figure(rows: list[dict]):
    """Box plots per arm of retrieval, generation and end-to-end latency (ms)."""
    import plotly.graph_objects as go

    main = [r for r in rows if not r.get("freshness")]
    arms = list(dict.fromkeys(r["arm"] for r in main))
    fig = go.Figure()
    parts = [("Retrieval", "#5b8def", lambda r: r["retrieve_ms"], lambda r: bool(r["citations"])),
             ("Generation", "#f0a04b", lambda r: r["generate_ms"], lambda r: True),
             ("End-to-end", "#555555", lambda r: r["retrieve_ms"] + r["generate_ms"], lambda r: True)]
    for name, colour, value, keep in parts:
        selected = [r for r in main if keep(r)]
        fig.add_trace(go.Box(
            name=name, x=[r["arm"] for r in selected], y=[value(r) for r in selected], marker_color=colour,
            boxpoints="outliers", line={"width": 1.3},
        ))
    return _layout(fig, "Latency per query (ms): retrieval vs generation", boxmode="group",
                   xaxis={"categoryorder": "array", "categoryarray": arms}, yaxis={"title": "ms", "rangemode": "tozero"})


def cost_figure(results: dict):
    """Quality (primary metric, with CI) against serving cost per 1k queries, one point per arm."""
    import plotly.graph_objects as go

    primary = results.get("primary_metric", "f1")
    fig = go.Figure()
    for i, (arm, info) in enumerate(results["arms"].items()):
        m = info["metrics"]
        value, ci = m.get(primary), info.get("ci95", {}).get(primary)
        fig.add_trace(go.Scatter(
            name=arm, x=[m.get("cost_per_1k_queries")], y=[value], mode="markers+text", text=[arm],
            textposition="top center", marker={"size": 14, "color": arm_colour(arm, i), "line": {"width": 1, "color": "#fff"}},
            error_y=_error([value], [ci]),
            customdata=[[m.get("latency_ms_p50"), m.get("training_usd") or 0.0]],
            hovertemplate=(f"<b>{arm}</b><br>{METRIC_LABELS.get(primary, primary)} %{{y:.3f}}<br>$%{{x:.4f}} per 1k queries"
                           "<br>p50 %{customdata[0]:.0f} ms<br>training $%{customdata[1]:.3f}<extra></extra>"),
        ))
    return _layout(fig, f"{METRIC_LABELS.get(primary, primary)} vs serving cost", showlegend=False,
                   xaxis={"title": "USD per 1,000 queries", "rangemode": "tozero"},
                   yaxis={"title": METRIC_LABELS.get(primary, primary), "range": [0, 1.05]})


def freshness_figure(results: dict):
    """Per arm: primary metric on unchanged facts vs on facts changed after training (None without data)."""
    import plotly.graph_objects as go

    fresh = (results.get("freshness") or {}).get("arms") or {}
    if not fresh:
        return None
    primary = results.get("primary_metric", "f1")
    arms = [a for a in results["arms"] if a in fresh] + [a for a in fresh if a not in results["arms"]]
    fig = go.Figure()
    for name, source, colour in (("Unchanged facts", results["arms"], "#b8c4d6"), ("Changed facts", fresh, "#d9534f")):
        values = [source.get(a, {}).get("metrics", {}).get(primary) for a in arms]
        cis = [source.get(a, {}).get("ci95", {}).get(primary) for a in arms]
        fig.add_trace(go.Bar(name=name, x=arms, y=values, marker_color=colour, error_y=_error(values, cis),
                             hovertemplate="%{x}: %{y:.3f}<extra>" + name + "</extra>"))
    return _layout(fig, f"Freshness: {METRIC_LABELS.get(primary, primary)} after the documents changed",
                   barmode="group", yaxis={"range": [0, 1.05], "title": METRIC_LABELS.get(primary, primary)})


def _params_text(params: dict) -> str:
    return "<br>".join(f"{name} {value}" for name, value in params.items())


def search_figure(arm: str, info: dict, colour: str):
    """Validation F1 against validation p95 latency, one point per trial of `arm`'s settings search: feasible
    trials filled, trials over a limit open, the defaults ringed, the chosen one a star; the p95 limit dashed.
    None when the run recorded no trial points (results.json from before they were)."""
    import plotly.graph_objects as go

    points = info.get("trial_results") or []
    if not points:
        return None
    chosen, default = info.get("trial"), info.get("default_trial")
    fig = go.Figure()

    def add(name: str, selected: list[dict], marker: dict) -> None:
        if not selected:
            return
        fig.add_trace(go.Scatter(
            name=name, x=[t["latency_ms_p95"] for t in selected], y=[t["f1"] for t in selected], mode="markers",
            marker=marker, text=[_params_text(t["params"]) for t in selected],
            customdata=[[t["trial"], "–" if t.get("cost_per_1k") is None else f"${t['cost_per_1k']:.6f}"]
                        for t in selected],
            hovertemplate=("trial %{customdata[0]}: F1 %{y:.3f}, p95 %{x:,.0f} ms, %{customdata[1]} per 1k"
                           "<br>%{text}<extra>" + name + "</extra>"),
        ))

    add("feasible", [t for t in points if t["feasible"]], {"size": 9, "color": colour, "opacity": 0.75})
    add("over a limit", [t for t in points if not t["feasible"]],
        {"size": 9, "color": "#999999", "symbol": "x-open", "line": {"width": 1.5}})
    add("defaults", [t for t in points if t["trial"] == default],
        {"size": 17, "color": "rgba(0,0,0,0)", "line": {"width": 2, "color": "#1d2430"}})
    add("chosen", [t for t in points if t["trial"] == chosen],
        {"size": 18, "color": colour, "symbol": "star", "line": {"width": 1.5, "color": "#1d2430"}})
    if info.get("max_p95_ms"):
        fig.add_vline(x=info["max_p95_ms"], line={"dash": "dash", "color": "#d9534f", "width": 1},
                      annotation_text="p95 limit", annotation_position="top left")
    return _layout(fig, f"{arm}: validation F1 vs p95 latency, every trial",
                   xaxis={"title": "validation p95 latency (ms)", "rangemode": "tozero"},
                   yaxis={"title": "validation F1", "range": [-0.05, 1.05]})  # a trial at F1 0 stays whole


def figure_div(fig, div_id: str) -> str:
    """One figure as an HTML <div> + inline script, relying on a plotly.js already on the page."""
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def figure_divs(results: dict, rows: list[dict]) -> dict[str, str]:
    """All report figures by name: quality, latency, cost, (when measured) freshness and, per searched arm,
    search_<arm>."""
    figures = {
        "quality": quality_figure(results),
        "latency": latency_figure(rows),
        "cost": cost_figure(results),
        "freshness": freshness_figure(results),
    }
    arms = list(results.get("arms") or {})
    for arm, info in ((results.get("search") or {}).get("arms") or {}).items():
        position = arms.index(arm) if arm in arms else len(arms)
        figures[f"search_{arm}"] = search_figure(arm, info, arm_colour(arm, position))
    return {name: figure_div(fig, f"fig-{name}") for name, fig in figures.items() if fig is not None}


def plotly_js() -> str:
    """The full plotly.js bundle shipped with the plotly package (offline), safe to inline in <script>."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().replace("</script", "<\\/script")
