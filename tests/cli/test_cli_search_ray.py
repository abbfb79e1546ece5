"""`tune --ray`, `compare --search --ray` and `demo --search` on the command line: which runner each hands the
library (the workflows are stubbed: no model, no Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_tree import run_main

pytest.importorskip("optuna")


class _Stop(Exception):
    pass


def test_tune_ray_hands_its_trials_to_ray_workers(tmp_path: Path, capsys, monkeypatch):
    seen = {}

    def run_tune(config, trials_on=None):
        seen.update(trials_on=trials_on, trials=config.trials)
        raise _Stop

    monkeypatch.setattr("ragtune.workflows.tune.run_tune", run_tune)
    (tmp_path / "index").mkdir()
    with pytest.raises(_Stop):
        run_main(["tune", "--index", str(tmp_path / "index"), "--out", str(tmp_path / "out"), "--trials", "5",
                  "--ray", "local", "--ray-workers", "3"], capsys)
    assert type(seen["trials_on"]).__name__ == "RayTrials" and seen["trials"] == 5
    assert (seen["trials_on"].address, seen["trials_on"].workers) == ("local", 3)


@pytest.mark.parametrize("search,runner", [(["--search", "4"], "trials_on"), ([], "executor")])
def test_compare_ray_runs_the_search_trials_on_ray_when_it_searches(tmp_path: Path, capsys, monkeypatch, search,
                                                                    runner):
    seen = {}

    def run_compare(config, executor=None, *, on_train_plan=None, trials_on=None):
        seen.update(executor=executor, trials_on=trials_on)
        raise _Stop

    monkeypatch.setattr("ragtune.workflows.compare.run_compare", run_compare)
    questions = tmp_path / "q.jsonl"
    questions.write_text("")
    with pytest.raises(_Stop):
        run_main(["compare", "--index", str(tmp_path), "--questions", str(questions), "--out", str(tmp_path / "run"),
                  "--ray", "local", *search], capsys)
    other = "executor" if runner == "trials_on" else "trials_on"
    assert seen[runner] is not None and seen[runner].workers == 2 and seen[other] is None


def test_demo_search_prints_the_searched_and_default_figures(tmp_path: Path, capsys, monkeypatch):
    run = tmp_path / "run"
    (run / "search").mkdir(parents=True)
    arm = {"test": {"f1": 0.41}, "default_test": {"f1": 0.35}, "gain_f1": 0.06, "params": {"k": 5},
           "default_params": {"k": 3}, "trials": 6, "search_s": 95.2}
    (run / "search" / "results.json").write_text(json.dumps(
        {"search": {"arms": {"rag": arm}, "test_questions": 21, "validation_questions": 9}}))
    calls = []
    monkeypatch.setattr("ragtune.workflows.demo.run_demo", lambda out, **kw: calls.append(kw) or run)
    monkeypatch.setattr("ragtune.cli.summary.print_run_summary", lambda run_dir: None)
    code, out, _ = run_main(["demo", "--out", str(run), "--search", "6"], capsys)
    assert code == 0 and calls == [{"limit": None, "seed": 0, "quick": False, "search": 6}]
    assert ('search rag: test F1 0.410 searched vs 0.350 defaults (+0.060) on 21 questions; 6 trial(s) on 9 '
            'validation questions in 95 s; chosen {"k": 5}') in out
