"""Two runs side by side."""

from __future__ import annotations

import re

from ragtune.evaluate.run_files import read_results
from ragtune.report.compare import compare_runs, render_comparison


def test_compare_runs_values(fake_run_dir, fake_run_dir_b):
    a, b = read_results(fake_run_dir), read_results(fake_run_dir_b)
    comparison = compare_runs(a, b)
    assert comparison["arms"] == ["base", "rag", "ft", "ft_rag", "raft"]
    quality = next(g for g in comparison["groups"] if g["heading"] == "Answer quality")
    f1_row = next(r for r in quality["rows"] if r["key"] == "f1")
    rag = comparison["arms"].index("rag")
    delta = b["arms"]["rag"]["metrics"]["f1"] - a["arms"]["rag"]["metrics"]["f1"]
    assert f1_row["cells"][rag]["a"] == f"{a['arms']['rag']['metrics']['f1']:.3f}"
    assert f1_row["cells"][rag]["delta"] == ("+" if delta >= 0 else "−") + f"{abs(delta):.3f}"
    assert f1_row["cells"][rag]["improved"] is (delta > 0)
    test = comparison["tests"]["rag"]
    assert test["n"] == 40  # the main questions only, not the freshness ones
    assert abs(test["delta"] - delta) < 1e-9


def test_compare_run_with_itself_shows_no_change(fake_run_dir):
    a = read_results(fake_run_dir)
    comparison = compare_runs(a, a)
    assert all(t["delta"] == 0 and t["p_value"] == 1.0 for t in comparison["tests"].values())


def test_render_comparison_page(fake_run_dir, fake_run_dir_b, tmp_path):
    out = render_comparison(fake_run_dir, fake_run_dir_b, out=tmp_path / "cmp.html")
    html = out.read_text(encoding="utf-8")
    assert html.count("plotly.js v") == 1
    assert 'id="fig-runs"' in html
    assert "run_a vs run_b" in html
    assert html.count("<h3>Answer quality</h3>") == 1
    assert re.search(r"<b>rag</b>: [+-]\d\.\d{3} f1", html)
    assert "seed" not in html or "What differs between the runs" in html
