"""The training settings of tuned arms in the search, and pruning, without a model: the space as data, the adapter
cache and its budget with a fake trainer, and optuna's MedianPruner with a fake runner that reports per batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.workflows import search as search_module
from ragtune.workflows.search import TrialMetrics, read_trials, search_arm
from ragtune.workflows.search_space import Param, SearchSpace, default_params, space_for
from ragtune.workflows.trained_adapters import MANIFEST, OverBudget, TrainedAdapters

pytest.importorskip("optuna")


# --- the space ------------------------------------------------------------------------------------------------

def test_tuned_arms_search_epochs_and_lr_only_when_the_search_trains_them():
    assert "epochs" not in space_for("ft").names and "lr" not in space_for("raft").names
    assert space_for("ft", train=True).names[-2:] == ("epochs", "lr")
    assert space_for("raft_tr", train=True).grid()["epochs"] == [1, 4]
    assert space_for("rag", train=True) == space_for("rag")  # no adapter, nothing to train
    defaults = default_params("ft", mode="hybrid", k=3, prompt_style="plain", context_sentences=3,
                              max_new_tokens=32, training={"epochs": 10, "lr": 1e-3})
    assert defaults == {"prompt_style": "plain", "max_new_tokens": 32, "epochs": 10, "lr": 1e-3}
    grid = space_for("ft", train=True).including(defaults).grid()
    assert grid["epochs"] == [10, 5, 20] and grid["lr"] == [1e-3, 3e-4, 3e-3]  # the trained defaults join


# --- the adapter cache and its budget -------------------------------------------------------------------------

class FakeTrainer:
    """Writes an adapter folder; its training takes `seconds_per` s per example-epoch of `examples` examples."""

    def __init__(self, examples: int = 5, seconds_per: float = 1.0):
        self.examples, self.seconds_per = examples, seconds_per
        self.calls: list[tuple[int, float]] = []

    def __call__(self, epochs: int, lr: float, out: Path) -> dict:
        self.calls.append((epochs, lr))
        (out / "sft").mkdir(parents=True)
        (out / "sft" / "adapter_model.safetensors").write_text(f"{epochs} {lr}")
        return {"path": str(out / "sft"), "train_s": self.examples * epochs * self.seconds_per,
                "examples": self.examples}


def test_each_adapter_is_trained_once_and_reused_by_a_resumed_search(tmp_path: Path):
    trainer = FakeTrainer()
    adapters = TrainedAdapters("sft", tmp_path, trainer, {"data": "abc"})
    first = adapters.get(2, 1e-3)
    assert first.trained_now and first.train_s == 10.0 and Path(first.path).name.startswith("sft-e2-lr0.001-")
    again = adapters.get(2, 1e-3)
    assert not again.trained_now and again.path == first.path and trainer.calls == [(2, 1e-3)]
    assert json.loads((Path(first.path) / MANIFEST).read_text())["train_s"] == 10.0
    assert not list(tmp_path.glob(".*partial"))  # trained under a temporary name, renamed into place
    resumed = TrainedAdapters("sft", tmp_path, trainer, {"data": "abc"})
    assert resumed.get(2, 1e-3).path == first.path and trainer.calls == [(2, 1e-3)]
    other_data = TrainedAdapters("sft", tmp_path, trainer, {"data": "xyz"})  # other training data: another key
    assert other_data.get(2, 1e-3).path != first.path and len(trainer.calls) == 2


def test_training_past_the_budget_is_refused_from_the_measured_speed(tmp_path: Path):
    """1 s per example-epoch over 5 examples: 2 epochs take 10 s. Budget 30 s: the defaults (2) spend 10, 4 epochs
    (~20 s) fit the 20 left, then 1 epoch (~5 s) does not; an adapter already trained costs nothing."""
    trainer = FakeTrainer()
    adapters = TrainedAdapters("sft", tmp_path, trainer, {}, budget_s=30)
    adapters.get(2, 1e-3, exempt=True)
    assert adapters.seconds_per_example_epoch() == 1.0 and adapters.estimate_s(4) == 20.0
    adapters.get(4, 3e-3)
    assert adapters.spent_s() == 30.0
    with pytest.raises(OverBudget, match=r"1 epoch\(s\) at lr 0.0003 needs ~5 s, 0 s of the 30 s training budget"):
        adapters.get(1, 3e-4)
    assert adapters.get(4, 3e-3).path and trainer.calls == [(2, 1e-3), (4, 3e-3)]
    adapters.get(1, 1e-3, exempt=True)  # the defaults: trained whatever the budget
    assert trainer.calls[-1] == (1, 1e-3)


def test_a_seeded_adapter_answers_for_the_defaults_and_is_not_the_search_s_cost(tmp_path: Path):
    trainer = FakeTrainer()
    adapters = TrainedAdapters("sft", tmp_path, trainer, {}, budget_s=12)
    adapters.seed(2, 1e-3, str(tmp_path / "compare-adapter"), train_s=10.0, examples=5)
    assert adapters.get(2, 1e-3).path == str(tmp_path / "compare-adapter") and trainer.calls == []
    assert adapters.spent_s() == 0.0 and adapters.estimate_s(2) == 10.0  # its speed is measured all the same
    adapters.get(2, 3e-3)  # 10 s of 12
    with pytest.raises(OverBudget):
        adapters.get(2, 3e-4)


# --- pruning --------------------------------------------------------------------------------------------------

SPACE = SearchSpace((Param("mode", ("hybrid", "dense", "bm25"), ""), Param("k", (3, 5), "")))  # 6 configurations
DEFAULTS = {"mode": "hybrid", "k": 3}
QUESTIONS = 24
# per-question F1 by configuration: the defaults 0.5 throughout; bm25/5 best; dense/5 a late bloomer (0 on the
# first batch, then 1.0: 0.67 in full, better than the defaults) that a pruner stops after its first batch
SCORES = {("hybrid", 3): [0.5] * 24, ("bm25", 5): [0.9] * 24, ("dense", 5): [0.0] * 8 + [1.0] * 16}


class ReportingRunner:
    """Answers QUESTIONS questions in batches of 8, reporting the running figures after each batch."""

    def __init__(self, scores: dict | None = None, others: list[float] | None = None):
        self.scores, self.others = scores or SCORES, others or [0.1] * QUESTIONS
        self.calls: list[dict] = []
        self.answered = 0

    def __call__(self, params, report=None) -> TrialMetrics:
        self.calls.append(dict(params))
        scores = self.scores.get((params["mode"], params["k"]), self.others)
        for n in range(8, QUESTIONS + 1, 8):
            self.answered += 8
            if report is not None and n < QUESTIONS:
                report(_metrics(scores[:n]))
        return _metrics(scores)


def _metrics(scores: list[float]) -> TrialMetrics:
    f1 = sum(scores) / len(scores)
    return TrialMetrics(f1=f1, exact_match=f1, latency_ms_p50=10.0, latency_ms_p95=20.0, n=len(scores),
                        latency_ms_mean=10.0, f1_scores=tuple(scores))


@pytest.fixture()
def prune_after_the_defaults(monkeypatch):
    monkeypatch.setattr(search_module, "PRUNE_STARTUP", 1)  # judge every trial against the finished defaults


def test_tpe_prunes_trials_below_the_median_and_never_chooses_them(tmp_path: Path, prune_after_the_defaults):
    runner = ReportingRunner()
    result = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path, budget=5, seed=0, prune=True)
    assert result.sampler == "coordinate+tpe" and result.pruner == "median"
    pruned = [t for t in result.trials if t.pruned]
    assert pruned and all(t.metrics.n == 8 and not t.feasible for t in pruned)  # stopped after the first batch
    assert {(t.params["mode"], t.params["k"]) for t in pruned} <= set(SPACE_KEYS) - {("hybrid", 3), ("bm25", 5)}
    for trial in pruned:  # its partial figures: the first batch's F1
        first = SCORES.get((trial.params["mode"], trial.params["k"]), [0.1] * 8)[:8]
        assert trial.metrics.f1 == pytest.approx(sum(first) / 8) and trial.intermediate == ((8, trial.metrics.f1),)
    assert not result.default_trial.pruned and result.default_trial.metrics.n == QUESTIONS
    assert result.best.params != {"mode": "dense", "k": 5}  # a pruned trial is never chosen
    assert runner.answered == QUESTIONS * (len(result.trials) - len(pruned)) + 8 * len(pruned)
    rows = [json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()]
    assert sum(bool(r.get("pruned")) for r in rows) == len(pruned)
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["pruned_trials"] == len(pruned) and best["pruner"] == "median"


SPACE_KEYS = [(m, k) for m in ("hybrid", "dense", "bm25") for k in (3, 5)]


def test_a_late_bloomer_is_pruned_and_its_partial_figures_kept(tmp_path: Path, prune_after_the_defaults):
    """Every configuration but the defaults would beat them in full (0.67 vs 0.5) but loses the first batch (0.0):
    each is pruned there, recorded with that batch's figures, and the defaults stay."""
    bloomer = [0.0] * 8 + [1.0] * 16
    runner = ReportingRunner({("hybrid", 3): [0.5] * QUESTIONS}, others=bloomer)
    result = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path, budget=3, seed=1, prune=True)
    others = [t for t in result.trials if t.params != DEFAULTS]
    assert len(others) == 2 and all(t.pruned and t.metrics.f1 == 0.0 and t.metrics.n == 8 for t in others)
    assert result.best.params == DEFAULTS and result.best.metrics.f1 == 0.5


def test_knowing_the_questions_the_pruner_waits_for_half_of_them(tmp_path: Path, prune_after_the_defaults):
    """The same late bloomers with `questions` given: no trial is judged on its first batch (8 of 24) but at 16
    (0.5, level with the defaults), so each answers every question."""
    bloomer = [0.0] * 8 + [1.0] * 16
    runner = ReportingRunner({("hybrid", 3): [0.5] * QUESTIONS}, others=bloomer)
    result = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path, budget=3, seed=1, prune=True, questions=QUESTIONS)
    assert search_module.prune_warmup(QUESTIONS) == 12
    assert not any(t.pruned for t in result.trials) and all(t.metrics.n == QUESTIONS for t in result.trials)
    assert runner.answered == 3 * QUESTIONS


def test_an_exhaustive_grid_is_never_pruned(tmp_path: Path, prune_after_the_defaults):
    runner = ReportingRunner()
    result = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path, budget=6, prune=True)
    assert result.sampler == "grid" and result.pruner is None
    assert not any(t.pruned for t in result.trials) and runner.answered == 6 * QUESTIONS
    assert result.best.params == {"mode": "bm25", "k": 5}


def test_a_resumed_search_keeps_its_pruned_trials_pruned_without_answering_them(tmp_path: Path,
                                                                                 prune_after_the_defaults):
    first = search_arm("rag", SPACE, DEFAULTS, ReportingRunner(), tmp_path, budget=4, seed=0, prune=True)
    pruned = {json.dumps(t.params, sort_keys=True) for t in first.trials if t.pruned}
    assert pruned
    recorded = read_trials(tmp_path / "trials.jsonl")
    assert all(recorded[key].pruned and recorded[key].intermediate for key in pruned)
    again = ReportingRunner()
    resumed = search_arm("rag", SPACE, DEFAULTS, again, tmp_path, budget=5, seed=0, prune=True, resume=True)
    assert not {json.dumps(c, sort_keys=True) for c in again.calls} & set(recorded)  # nothing answered twice
    assert {json.dumps(t.params, sort_keys=True) for t in resumed.trials if t.pruned} >= pruned
    assert json.dumps(resumed.best.params, sort_keys=True) not in pruned


def test_the_pruner_waits_for_three_distinct_finished_configurations(tmp_path: Path):
    """TPE proposes configurations again; those repeats must not count as finished trials in the pruner's median,
    or a trial is judged too early, against the defaults counted twice."""
    first_batch = {("hybrid", 3): 0.5, ("hybrid", 5): 0.45, ("dense", 3): 0.2, ("dense", 5): 0.3, ("bm25", 3): 0.25,
                   ("bm25", 5): 0.35}
    runner = ReportingRunner({key: [f1] * 8 + [0.1] * 16 for key, f1 in first_batch.items()})
    result = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path, budget=5, seed=0, prune=True)
    assert [t.pruned for t in result.trials[:3]] == [False, False, False]
    for i, trial in enumerate(result.trials[3:], start=3):  # pruned iff below the median of those finished before
        finished = sorted(first_batch[(t.params["mode"], t.params["k"])] for t in result.trials[:i] if not t.pruned)
        median = finished[len(finished) // 2] if len(finished) % 2 else sum(finished[len(finished) // 2 - 1:][:2]) / 2
        assert trial.pruned == (first_batch[(trial.params["mode"], trial.params["k"])] < median)
