"""The search's ask-and-tell loop with several trials at once, without Ray: a fake executor that finishes trials
out of order, a configuration asked again while it runs, a trial that fails (recorded, never chosen, run again by
--resume), and the same grid winner as the serial search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.workflows.search import NOT_RUN, TrialMetrics, read_trials, search_arm
from ragtune.workflows.search_space import Param, SearchSpace
from ragtune.workflows.trial_loop import TrialOutcome

pytest.importorskip("optuna")

SPACE = SearchSpace((Param("mode", ("hybrid", "dense", "bm25"), ""), Param("k", (3, 5), "")))  # 6 configurations
DEFAULTS = {"mode": "hybrid", "k": 3}
F1 = {("hybrid", 3): 0.40, ("hybrid", 5): 0.50, ("dense", 3): 0.30, ("dense", 5): 0.35, ("bm25", 3): 0.45,
      ("bm25", 5): 0.60}


def _metrics(params) -> TrialMetrics:
    f1 = F1[(params["mode"], params["k"])]
    return TrialMetrics(f1=f1, exact_match=f1 / 2, latency_ms_p50=10.0, latency_ms_p95=20.0, n=4,
                        latency_ms_mean=10.0)


def runner(params, report=None) -> TrialMetrics:
    return _metrics(params)


class OutOfOrder:
    """Runs `width` trials at once and finishes the latest started first; `fails` configurations fail."""

    def __init__(self, width: int = 2, fails: tuple = ()):
        self.width, self.fails = width, fails
        self.started: list[tuple[int, dict]] = []
        self._running: list[tuple[int, dict]] = []
        self.most_at_once = 0

    def start(self, number, params, trial) -> None:
        self.started.append((number, dict(params)))
        self._running.append((number, dict(params)))
        self.most_at_once = max(self.most_at_once, len(self._running))

    def wait(self) -> tuple[int, TrialOutcome]:
        number, params = self._running.pop()
        if (params["mode"], params["k"]) in self.fails:
            return number, TrialOutcome(NOT_RUN, 0.0, failed="worker lost (after 3 attempt(s) on Ray)")
        return number, TrialOutcome(_metrics(params), 0.5, steps=((2, 0.1),))


def test_a_grid_run_out_of_order_numbers_and_chooses_as_the_serial_search(tmp_path: Path):
    serial = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path / "serial", budget=6)
    executor = OutOfOrder(width=2)
    parallel = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path / "parallel", budget=6, executor=executor)
    assert executor.most_at_once == 2 and len(executor.started) == 6
    assert [(t.number, t.params, t.metrics.f1) for t in parallel.trials] == \
        [(t.number, t.params, t.metrics.f1) for t in serial.trials]
    assert parallel.best.params == serial.best.params == {"mode": "bm25", "k": 5}
    rows = [json.loads(line) for line in (tmp_path / "parallel" / "trials.jsonl").read_text().splitlines()]
    assert [r["trial"] for r in rows] != sorted(r["trial"] for r in rows)  # recorded as they finished
    assert all(r["intermediate"] == [[2, 0.1]] for r in rows)


def test_a_failed_trial_is_recorded_never_chosen_and_run_again_on_resume(tmp_path: Path):
    executor = OutOfOrder(width=2, fails=(("bm25", 5),))
    result = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path, budget=6, executor=executor)
    failed = [t for t in result.trials if t.failed]
    assert [t.params for t in failed] == [{"mode": "bm25", "k": 5}] and not failed[0].feasible
    assert result.best.params == {"mode": "hybrid", "k": 5}  # the best of those that ran
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["failed_trials"] == 1 and best["trials"] == 6
    assert read_trials(tmp_path / "trials.jsonl")[json.dumps(failed[0].params, sort_keys=True)].failed

    again = OutOfOrder(width=2)
    resumed = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path, budget=6, executor=again, resume=True)
    assert [p for _, p in again.started] == [{"mode": "bm25", "k": 5}]  # only the failed one ran again
    assert resumed.best.params == {"mode": "bm25", "k": 5} and not any(t.failed for t in resumed.trials)
    assert json.loads((tmp_path / "best.json").read_text())["failed_trials"] == 0


def test_tpe_with_trials_at_once_runs_each_configuration_once_and_never_prunes(tmp_path: Path):
    executor = OutOfOrder(width=3)
    result = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path, budget=5, seed=0, prune=True, executor=executor)
    assert result.sampler == "coordinate+tpe" and result.pruner is None and not any(t.pruned for t in result.trials)
    configurations = [json.dumps(p, sort_keys=True) for _, p in executor.started]
    assert len(configurations) == len(set(configurations)) == 5  # a configuration asked again was not run again
    assert executor.started[0][1] == DEFAULTS  # the defaults first, as serially
