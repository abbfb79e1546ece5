"""Printing a finished comparison run: the per-arm table, significance and the recommendation."""

from __future__ import annotations

import json
from pathlib import Path

COLUMNS = (
    ("exact_match", "EM", "{:.3f}"),
    ("f1", "F1", "{:.3f}"),
    ("semantic_similarity", "Sim", "{:.2f}"),
    ("faithfulness", "Faith", "{:.2f}"),
    ("citation_precision", "Cite", "{:.2f}"),
    ("retrieval_recall_at_k", "R@k", "{:.2f}"),
    ("latency_ms_p50", "p50 ms", "{:.0f}"),
    ("latency_ms_p95", "p95 ms", "{:.0f}"),
    ("cost_per_1k_queries", "$/1k q", "{:.3f}"),
)


def _cell(value, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def print_run_summary(run_dir: Path) -> None:
    """Rich table of a run folder's results.json on stdout."""
    from rich.console import Console
    from rich.table import Table

    results = json.loads((Path(run_dir) / "results.json").read_text(encoding="utf-8"))
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 120)  # logs and pipes: never squeeze the table
    table = Table(title=f"ragtune compare — {results['setup'].get('questions', '?')} questions")
    table.add_column("arm", style="bold", no_wrap=True)
    for i, (_, header, _) in enumerate(COLUMNS):
        table.add_column(header, justify="right", no_wrap=True)
        if i == 1:
            table.add_column("F1 95% CI", justify="right", no_wrap=True)
    for arm, entry in results["arms"].items():
        metrics = entry["metrics"]
        ci = entry.get("ci95", {}).get("f1")
        cells = [_cell(metrics.get(key), fmt) for key, _, fmt in COLUMNS]
        cells.insert(2, f"{ci[0]:.2f}–{ci[1]:.2f}" if ci else "—")
        table.add_row(arm, *cells)
    console.print(table)
    fresh = results.get("freshness")
    if fresh:
        parts = [f"{arm} F1 {e['metrics']['f1']:.2f}" for arm, e in fresh["arms"].items()]
        console.print(f"Freshness ({fresh['n']} changed facts): " + ", ".join(parts))
    for c in results.get("comparisons", []):
        if c["metric"] == results.get("primary_metric", "f1"):
            # The verdict is Holm-adjusted over every pair (as the report says), so the p-value printed is too.
            holm = c.get("p_value_holm")
            p_text = f"p={c['p_value']:.3g}" if holm is None else f"p={holm:.3g} (Holm)"
            verdict = "significant" if c.get("significant") else "not significant"
            console.print(f"  {c['a']} vs {c['b']}: ΔF1 {c['delta']:+.3f}, {p_text}, {verdict}")
    rec = results.get("recommendation") or {}
    console.print(f"[bold green]Recommendation: {rec.get('arm')}[/]")
    for reason in rec.get("reasons", []):
        console.print(f"  - {reason}")
    console.print(f"Report: {Path(run_dir).resolve() / 'report.html'}")
