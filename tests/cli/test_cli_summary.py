"""The run summary printed after `compare`/`demo`: the p-value shown is the one its verdict was judged on."""

from __future__ import annotations

import json

from ragtune.cli.summary import print_run_summary


def test_pairwise_lines_print_the_holm_p_their_verdict_uses(tmp_path, capsys):
    results = {
        "setup": {"questions": 30}, "primary_metric": "f1",
        "arms": {"raft": {"metrics": {"f1": 0.68}}, "ft_rag": {"metrics": {"f1": 0.43}}},
        "comparisons": [
            {"a": "raft", "b": "ft_rag", "metric": "f1", "delta": 0.253, "p_value": 0.046, "p_value_holm": 0.23,
             "significant": False},
            {"a": "raft", "b": "base", "metric": "f1", "delta": 0.65, "p_value": 0.0005, "significant": True},
        ],
        "recommendation": {"arm": "raft", "reasons": []},
    }
    (tmp_path / "results.json").write_text(json.dumps(results), encoding="utf-8")
    print_run_summary(tmp_path)
    out = capsys.readouterr().out
    assert "raft vs ft_rag: ΔF1 +0.253, p=0.23 (Holm), not significant" in out  # was raw p=0.046 beside the verdict
    assert "raft vs base: ΔF1 +0.650, p=0.0005, significant" in out  # no Holm value recorded: the raw one
