"""results.json keeps its shape now that scoring returns typed RunResults: golden keys, byte-exact round trips,
and `ragtune report` on a results.json written before (no recommendation, fewer keys)."""

from __future__ import annotations

import json
import shutil

import pytest

from ragtune.cli import main
from ragtune.errors import InputError
from ragtune.evaluate.results import ArmMetrics, Comparison, Freshness, Recommendation, RunResults
from results_layout import assert_golden_layout

def test_fake_run_results_json_keeps_the_golden_layout_and_round_trips_byte_for_byte(fake_run_dir):
    text = (fake_run_dir / "results.json").read_text(encoding="utf-8")
    assert_golden_layout(json.loads(text), ["base", "rag", "ft", "ft_rag", "raft"])
    typed = RunResults.from_json(text)
    assert typed.to_json() == text
    assert RunResults.from_dict(typed.to_dict()) == typed


def test_run_results_are_typed(fake_run_dir):
    typed = RunResults.from_json((fake_run_dir / "results.json").read_text(encoding="utf-8"))
    assert isinstance(typed.arms["rag"], ArmMetrics) and typed.arms["rag"].uses_retrieval is True
    assert typed.arms["base"].uses_retrieval is False
    assert isinstance(typed.freshness, Freshness) and typed.freshness.arms["rag"].uses_retrieval is None
    assert all(isinstance(c, Comparison) for c in typed.comparisons)
    assert isinstance(typed.recommendation, Recommendation) and typed.recommendation.arm == "raft"
    c = typed.comparisons[0]
    assert typed.comparison(c.b, c.a, c.metric) == c.flipped()
    assert c.flipped().delta == -c.delta and c.flipped().ci95 == (-c.ci95[1], -c.ci95[0])


def test_hand_built_results_round_trip_without_inventing_fields():
    data = {"primary_metric": "f1", "alpha": 0.05,
            "arms": {"rag": {"n": 3, "uses_retrieval": True, "metrics": {"f1": 0.5}, "ci95": {"f1": [0.4, 0.6]}}},
            "comparisons": [{"a": "rag", "b": "base", "metric": "f1", "delta": 0.1, "p_value": 0.2}],
            "freshness": None, "future_key": {"kept": True}}
    out = RunResults.from_dict(data).to_dict()
    assert out["comparisons"] == data["comparisons"]  # absent optional fields stay absent
    assert out["future_key"] == {"kept": True}  # keys of a newer version are written back
    assert out["arms"] == data["arms"]
    with pytest.raises(InputError, match="results.json"):
        RunResults.from_dict({"arms": ["rag"]})


def test_report_renders_an_older_results_json_and_recommends(fake_run_dir, tmp_path):
    run = tmp_path / "old_run"
    shutil.copytree(fake_run_dir, run)
    old = json.loads((run / "results.json").read_text(encoding="utf-8"))
    for key in ("recommendation", "methods", "n_resamples", "format_version"):  # an earlier, thinner results.json
        old.pop(key)
    old["scenario"]["retired_field"] = 1  # a scenario field this version does not know
    (run / "results.json").write_text(json.dumps(old), encoding="utf-8")
    main(["report", str(run)])  # returns normally (exit 0)
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "raft has the best F1" in html  # the recommendation was computed for the stored scenario
