"""Searching one arm's settings on the validation questions with Optuna (extra ragtune[search]).

A trial answers every validation question through the one answer path (ragtune.evaluate.harness.run_arm:
`retrieve` + `answer_from_hits`) with one configuration of the arm's space (ragtune.workflows.search_space)
and scores token F1 — the metric `compare` reports. When the whole grid fits in the budget every configuration
is tried (optuna's GridSampler); otherwise the search goes module by module first — the arm's defaults, then the
defaults with one setting changed at a time (`coordinate_sweep`: every setting's first other value before any
second one, so even a small budget varies each setting once), then, when two or more settings beat the defaults
changed alone, one trial with each of them at its best value together (`combined_winners`: the module-by-module
step that puts the sweep's findings together; a budget that can vary every setting once and still hold it keeps a
trial for it) — and a seeded TPE sampler, which learns from those trials, proposes the rest (sampler
"coordinate+tpe"). A p95 latency
limit and a serving-cost limit (USD per 1k queries: the cost model, ragtune.evaluate.cost, priced on the mean
validation latency as `compare` prices an arm) are constraints: a trial over either is recorded as infeasible
and never chosen, however good its F1.

The best feasible trial replaces the defaults only when it beats them on the same validation questions by a
paired test (sign-flip, ragtune.evaluate.stats) at SWITCH_ALPHA divided by the number of trials it was picked
from (Bonferroni: the best of m noisy comparisons clears 0.05 by luck far more often than one does): on a few
questions the top of many trials is mostly luck, and a search must not leave an arm worse than its defaults. On
SQuAD a k=5 that beat the defaults on 60 validation questions by +0.057, p=0.011 (best of 6 alternatives) lost
on the 140 test questions by -0.024; at 0.05/6 the defaults would have stayed. best.json holds the chosen settings
and that comparison, with the lead the split could confirm at that level (`detectable_f1`, 80% power): how
many more questions a kept default would need.

Each trial is appended to trials.jsonl as it finishes; with `resume` a configuration already recorded there is
not answered again. A configuration that cannot be run (a chunk size whose index cannot be rebuilt, an adapter
whose training would exceed the training budget: the runner raises TrialSkipped) is recorded with its reason as a
skipped, infeasible trial; a resumed search tries it again. With training settings in the space, each trial
records its adapter and the seconds it spent training (`training`: 0 when it reused an adapter).

Pruning (`prune`, TPE only: an exhaustive grid answers every configuration in full): the runner reports the
running F1 after each batch of questions, and optuna's MedianPruner stops a trial whose running F1 is below the
median of the finished trials' at the same number of questions (once PRUNE_STARTUP distinct configurations
have finished, and after PRUNE_WARMUP questions and half of the `questions` each trial answers: prune_warmup).
A pruned trial is recorded with its partial figures (`pruned`, `intermediate`), is never chosen, and a resumed
search neither answers it again nor forgets it: it is pruned there too, and the running
figures of every recorded trial are told to the pruner again, so it judges as the first run did. The defaults
are never pruned (the baseline a winner must beat question by question).

The trials run through an ask-and-tell loop (ragtune.workflows.trial_loop): one at a time in this process, or
several at once on Ray (ragtune.distributed.ray_trials), where no trial is pruned (a worker cannot hear the
pruner mid-trial: each answers every question, its per-batch figures recorded) and a trial whose worker kept
failing is recorded as failed (never chosen; a resumed search runs it again).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragtune.errors import ConfigError, InputError, MissingExtraError
from ragtune.evaluate.cost import CostModel
from ragtune.evaluate.run_files import write_text_atomic
from ragtune.evaluate.stats import detectable_difference, paired_test
from ragtune.workflows.search_space import Choice, SearchSpace
from ragtune.workflows.trial_types import (  # noqa: F401  (re-exported: search's public names)
    NOT_RUN,
    Report,
    Limits,
    Trial,
    TrialMetrics,
    TrialRunner,
    TrialSkipped,
    params_key,
)

if TYPE_CHECKING:
    from ragtune.workflows.trial_loop import TrialExecutor

logger = logging.getLogger(__name__)

SWITCH_ALPHA = 0.05  # the winner must beat the defaults on validation at this paired p-value, else they stay
PRUNE_STARTUP = 3  # finished trials before the pruner judges (the defaults among them)
PRUNE_WARMUP = 8  # questions answered before a trial can be pruned (a batch's F1 is mostly noise)
# and, when the search knows how many validation questions a trial answers, at least this share of them: on the
# SQuAD bench (122 validation questions, batches of 16) every trial but three was pruned after its first 16
# questions, so the search chose among configurations it had judged on 16 questions
PRUNE_WARMUP_SHARE = 0.5

TRIALS_FILE = "trials.jsonl"
BEST_FILE = "best.json"


@dataclass(frozen=True)
class SearchResult:
    """The search of one arm: its space, the defaults, every trial and the chosen one."""

    arm: str
    space: SearchSpace
    defaults: dict[str, Choice]
    trials: list[Trial]
    best: Trial
    sampler: str  # "grid" | "coordinate+tpe"
    limits: Limits
    seconds: float
    versus_defaults: dict[str, Any] | None = None  # the paired test that let the winner replace the defaults
    index: dict[str, Any] | None = None  # the index the chosen settings answer from (its chunking and folder)
    pruner: str | None = None  # "median" when losing trials were stopped early
    training: dict[str, Any] | None = None  # whether the arm's training is searched, and its budget

    def chosen_training(self) -> dict[str, Any] | None:
        """best.json "training": whether the arm's training settings were searched (else why not), the chosen
        epochs, lr and adapter, and what training cost the search (seconds over every trial)."""
        if self.training is None:
            return None
        if not self.training.get("searched"):
            return dict(self.training)
        chosen = self.best.training or {}
        return {**self.training, "epochs": chosen.get("epochs"), "lr": chosen.get("lr"),
                "adapter": chosen.get("adapter"), "adapter_train_s": chosen.get("adapter_train_s"),
                "train_s": round(sum((t.training or {}).get("train_s") or 0.0 for t in self.trials), 3),
                "adapters_trained": sum(bool((t.training or {}).get("train_s")) for t in self.trials),
                "over_budget_trials": sum("over_budget" in (t.training or {}) for t in self.trials)}

    @property
    def default_trial(self) -> Trial | None:
        return next((t for t in self.trials if t.params == self.defaults), None)

    def to_dict(self) -> dict[str, Any]:
        """best.json: the chosen settings and their validation figures, and what was searched."""
        default = self.default_trial
        return {"arm": self.arm, "params": self.best.params, "validation": self.best.to_dict()["validation"],
                "trial": self.best.number, "default_params": self.defaults,
                "default_validation": default.to_dict()["validation"] if default else None,
                "space": self.space.describe(), "sampler": self.sampler, "max_p95_ms": self.limits.max_p95_ms,
                "max_cost_per_1k": self.limits.max_cost_per_1k, "trials": len(self.trials),
                "feasible_trials": sum(t.feasible for t in self.trials),
                "skipped_trials": sum(bool(t.skipped) for t in self.trials), "search_s": round(self.seconds, 2),
                "failed_trials": sum(bool(t.failed) for t in self.trials),
                "pruned_trials": sum(t.pruned for t in self.trials), "pruner": self.pruner,
                "versus_defaults": self.versus_defaults, "index": self.index, "training": self.chosen_training()}


def require_optuna():
    """The optuna module, or MissingExtraError naming the extra (ragtune[search])."""
    try:
        import optuna
    except ImportError as exc:
        raise MissingExtraError("optuna", "search") from exc
    return optuna


def read_trials(path: Path) -> dict[str, Trial]:
    """The trials recorded in trials.jsonl, by configuration (a torn last line from a kill is skipped); a
    configuration that was skipped (or failed) and later run is the run."""
    trials: dict[str, Trial] = {}
    if not path.is_file():
        return trials
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            trial = Trial.from_dict(json.loads(line))
        except (ValueError, KeyError, TypeError):
            continue
        key = params_key(trial.params)
        if key not in trials or (trials[key].retry and not trial.retry):
            trials[key] = trial
    return trials


def prune_warmup(questions: int | None) -> int:
    """Questions a trial answers before the pruner may stop it: PRUNE_WARMUP, and PRUNE_WARMUP_SHARE of
    `questions` (the validation questions each trial answers) when known.

    >>> prune_warmup(None), prune_warmup(10), prune_warmup(122)
    (8, 8, 61)
    """
    return max(PRUNE_WARMUP, math.ceil(PRUNE_WARMUP_SHARE * questions)) if questions else PRUNE_WARMUP


def search_arm(arm: str, space: SearchSpace, defaults: Mapping[str, Choice], runner: TrialRunner, out_dir: Path,
               *, budget: int, seed: int = 0, max_p95_ms: float | None = None, max_cost_per_1k: float | None = None,
               cost_model: CostModel | None = None, resume: bool = False, runs_db: str | None = None,
               describe_index: Callable[[Mapping[str, Choice]], dict[str, Any] | None] | None = None,
               prune: bool = False, describe_training: Callable[[Mapping[str, Choice]], dict[str, Any] | None]
               | None = None, training: dict[str, Any] | None = None,
               executor: TrialExecutor | None = None, questions: int | None = None) -> SearchResult:
    """Search `arm`'s `space` (its `defaults` included) with up to `budget` distinct configurations.

    `runner(params)` answers the validation questions with one configuration (TrialSkipped: it cannot; with
    `prune` and a TPE search, `runner(params, report)` reports its running figures after each batch);
    `describe_index(params)`, when given, says which index the chosen configuration answers from, and
    `describe_training(params)` what a trial's adapter cost; `training` is best.json's word on the arm's
    training (searched, its budget, or why not). Writes out_dir/trials.jsonl (one row per trial, as it
    finishes) and out_dir/best.json; records the trials in the runs database. InputError when no configuration
    meets `max_p95_ms` and `max_cost_per_1k` (USD per 1k queries, priced by `cost_model`). `executor` runs the
    trials elsewhere, several at once (ragtune.distributed.ray_trials; `runner` is then unused): such trials are
    never pruned, their per-batch figures only recorded. Default: one at a time through `runner`, here.
    `questions`: how many validation questions each trial answers (the pruner waits for half of them).
    """
    optuna = require_optuna()
    if budget < 1:
        raise ConfigError(f"search budget must be at least 1 trial, got {budget}")
    limits = Limits(max_p95_ms, max_cost_per_1k, cost_model or CostModel())
    defaults = dict(defaults)
    space = space.including(defaults)
    out_dir.mkdir(parents=True, exist_ok=True)
    trials_path = out_dir / TRIALS_FILE
    recorded = read_trials(trials_path) if resume else {}
    if not resume:
        trials_path.unlink(missing_ok=True)
    grid = space.size <= budget
    pruning = prune and not grid and executor is None  # an executor's trials run elsewhere: never pruned
    target = space.size if grid else budget
    started = time.perf_counter()
    from ragtune.workflows.trial_loop import InProcessTrials, run_trials

    if executor is None:
        executor = InProcessTrials(runner, pruning=pruning, defaults=defaults, arm=arm,
                                   describe_training=describe_training)
    sampler = (_grid_sampler(optuna, space, seed) if grid
               else optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, min(10, budget // 3)),
                                               constant_liar=executor.width > 1,  # trials running at once
                                               **_constraints_func(optuna, limits)))
    # n_min_trials: PRUNE_STARTUP distinct configurations with figures at that step (repeats have none)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=PRUNE_STARTUP, n_warmup_steps=prune_warmup(questions),
                                          n_min_trials=PRUNE_STARTUP) if pruning else optuna.pruners.NopPruner())
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "trial N finished" line per trial on stderr
    try:
        study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
        # TPE may propose a configuration again; those repeats cost nothing, and the cap ends a search that
        # keeps repeating itself before it has `target` distinct ones.
        run = dict(space=space, executor=executor, max_asks=target if grid else 20 * target + 20, recorded=recorded,
                   limits=limits, pruning=pruning, record=lambda trial: _append(trials_path, trial))
        seen: dict[str, Trial] = {}
        if not grid:
            study.enqueue_trial(defaults)  # the defaults are the first trial: the baseline the search must beat
            sweep = coordinate_sweep(space, defaults, sweep_limit(space, defaults, budget))
            for params in sweep:
                study.enqueue_trial(params)
            seen = run_trials(study, target=min(target, 1 + len(sweep)), **run)
            combined = combined_winners(defaults, seen.values())
            if combined is not None and params_key(combined) not in seen:
                study.enqueue_trial(combined)
        seen = run_trials(study, target=target, seen=seen, **run)
    finally:
        optuna.logging.set_verbosity(verbosity)
    trials = sorted(seen.values(), key=lambda t: t.number)
    best, versus = _confirmed(_best(arm, trials, defaults, limits), trials, defaults, seed)
    result = SearchResult(arm=arm, space=space, defaults=defaults, trials=trials, best=best,
                          sampler="grid" if grid else "coordinate+tpe", limits=limits,
                          seconds=time.perf_counter() - started,
                          versus_defaults=versus, index=describe_index(best.params) if describe_index else None,
                          pruner="median" if pruning else None, training=training)
    write_text_atomic(out_dir / BEST_FILE, json.dumps(result.to_dict(), indent=2) + "\n")
    _record(out_dir, result, runs_db)
    return result


def coordinate_sweep(space: SearchSpace, defaults: Mapping[str, Choice], limit: int) -> list[dict[str, Choice]]:
    """Module by module: the defaults with one setting changed at a time, at most `limit` of them — every setting's
    first other value before the second of any, so a budget smaller than the sweep still varies each setting.

    On 2 cores a trial costs minutes, and TPE's random start-up spent most of a 12-24 trial budget on configurations
    that differ from the defaults in several settings at once, which says little about any one of them.

    >>> from ragtune.workflows.search_space import Param
    >>> space = SearchSpace((Param("k", (3, 5), ""), Param("mode", ("hybrid", "dense", "bm25"), "")))
    >>> coordinate_sweep(space, {"k": 3, "mode": "hybrid"}, 5)
    [{'k': 5, 'mode': 'hybrid'}, {'k': 3, 'mode': 'dense'}, {'k': 3, 'mode': 'bm25'}]
    """
    others = [[(p.name, value) for value in p.choices if value != defaults[p.name]] for p in space.params]
    sweep = [{**defaults, name: value}
             for depth in range(max(map(len, others), default=0)) for options in others if depth < len(options)
             for name, value in [options[depth]]]
    return sweep[: max(limit, 0)]


def sweep_limit(space: SearchSpace, defaults: Mapping[str, Choice], budget: int) -> int:
    """How many one-setting changes the sweep may take of `budget` trials: all but the defaults' trial, less one
    kept for combining the sweep's winners when the budget can still vary every setting once before it.

    >>> from ragtune.workflows.search_space import Param
    >>> space = SearchSpace((Param("k", (3, 5), ""), Param("mode", ("hybrid", "dense", "bm25"), "")))
    >>> [sweep_limit(space, {"k": 3, "mode": "hybrid"}, budget) for budget in (2, 3, 4, 5, 12)]
    [1, 2, 2, 3, 10]
    """
    varied = sum(any(value != defaults[p.name] for value in p.choices) for p in space.params)
    return budget - 2 if budget - 2 >= varied else budget - 1


def combined_winners(defaults: Mapping[str, Choice], trials: Iterable[Trial]) -> dict[str, Choice] | None:
    """The defaults with each setting that beat them when changed alone (a feasible trial with a higher validation
    F1) set to its best such value — when two or more settings did; else None (one winner is its own trial).

    >>> from ragtune.workflows.trial_types import TrialMetrics
    >>> def tried(f1, **params):
    ...     return Trial(0, {"k": 3, "mode": "hybrid", **params}, TrialMetrics(f1, 0, 1, 1, 1), 0.0, True)
    >>> combined_winners({"k": 3, "mode": "hybrid"}, [tried(0.4), tried(0.5, k=5), tried(0.45, mode="bm25"),
    ...                                              tried(0.6, mode="dense", k=5), tried(0.3, mode="dense")])
    {'k': 5, 'mode': 'bm25'}
    """
    defaults, trials = dict(defaults), list(trials)  # read twice: the defaults' trial, then the winners
    base = next((t for t in trials if t.params == defaults and t.feasible), None)
    if base is None:
        return None
    best: dict[str, tuple[Choice, float]] = {}
    for trial in trials:
        changed = [name for name in defaults if trial.params.get(name) != defaults[name]]
        if not trial.feasible or len(changed) != 1 or trial.metrics.f1 <= base.metrics.f1:
            continue
        name = changed[0]
        if name not in best or trial.metrics.f1 > best[name][1]:
            best[name] = (trial.params[name], trial.metrics.f1)
    return {**defaults, **{name: value for name, (value, _) in best.items()}} if len(best) >= 2 else None


def _best(arm: str, trials: list[Trial], defaults: Mapping[str, Choice], limits: Limits) -> Trial:
    """The feasible trial with the highest F1 (then EM); on a tie the defaults, then the earliest trial. The
    limits only ever exclude: they never break a tie."""
    feasible = [t for t in trials if t.feasible]
    if not feasible:
        fastest = min((t.metrics.latency_ms_p95 for t in trials if not t.retry), default=math.nan)
        costs = [t.cost_per_1k for t in trials if t.cost_per_1k is not None]
        cheapest = f", the cheapest ${min(costs):.6f} per 1k queries" if costs and limits.max_cost_per_1k else ""
        raise InputError(f"no configuration of arm {arm!r} meets {limits.describe()} on validation "
                         f"(the fastest of {len(trials)} trial(s) had p95 {fastest:,.0f} ms{cheapest})")
    return max(feasible, key=lambda t: (t.metrics.f1, t.metrics.exact_match, t.params == dict(defaults), -t.number))


def _confirmed(best: Trial, trials: list[Trial], defaults: Mapping[str, Choice],
               seed: int) -> tuple[Trial, dict[str, Any] | None]:
    """`best`, or the defaults' trial when `best` does not beat it on validation by a paired test (p below
    SWITCH_ALPHA over the number of feasible trials it was the best of, higher mean F1) — and that test. Without
    per-question scores for both, `best` stands."""
    default = next((t for t in trials if t.params == dict(defaults) and t.feasible), None)
    if default is None or default is best or not best.metrics.f1_scores \
            or len(best.metrics.f1_scores) != len(default.metrics.f1_scores):
        return best, None
    compared = max(1, sum(t.feasible and t is not default for t in trials))  # the alternatives `best` was picked from
    alpha = SWITCH_ALPHA / compared
    test = paired_test(best.metrics.f1_scores, default.metrics.f1_scores, seed=seed)
    switched = test.delta > 0 and test.p_value < alpha
    differences = [a - b for a, b in zip(best.metrics.f1_scores, default.metrics.f1_scores, strict=True)]
    detectable = detectable_difference(differences, alpha=alpha)
    versus = {"trial": best.number, "delta_f1": round(test.delta, 4), "p_value": round(test.p_value, 4),
              "n": test.n, "alpha": round(alpha, 6), "family_alpha": SWITCH_ALPHA, "compared": compared,
              "switched": switched, "detectable_f1": round(detectable, 4) if math.isfinite(detectable) else None}
    if not switched:
        logger.info("trial %d beat the defaults by %+.3f F1 on validation, p=%.3f ≥ %g (%g over %d trials): the "
                    "defaults stay (%d validation questions confirm a lead of about %+.3f at that level)",
                    best.number, test.delta, test.p_value, alpha, SWITCH_ALPHA, compared, test.n, detectable)
    return (best if switched else default), versus


def _grid_sampler(optuna: Any, space: SearchSpace, seed: int) -> Any:
    """optuna's GridSampler for an ask-and-tell loop: it stops the study itself when the grid is done, which only
    `study.optimize` allows; the loop asks exactly the grid's size instead."""

    class AskedGrid(optuna.samplers.GridSampler):
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            pass

    return AskedGrid(space.grid(), seed=seed)


def _constraints_func(optuna: Any, limits: Limits) -> dict[str, Any]:
    """optuna < 5 reads constraints through TPESampler(constraints_func=...); 5 through Trial.set_constraint."""
    if not limits.describe() or hasattr(optuna.trial.Trial, "set_constraint"):
        return {}
    return {"constraints_func": lambda frozen: list(frozen.user_attrs["constraints"])}


def _append(path: Path, trial: Trial) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(trial.to_dict()) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _record(out_dir: Path, result: SearchResult, runs_db: str | None) -> None:
    from ragtune.runs_db import record_search

    try:
        record_search(out_dir, result.arm, [t.to_dict() for t in result.trials], best=result.best.number,
                      db_path=runs_db)
    except Exception as exc:  # noqa: BLE001 - the search files are written; a DB problem must not lose them
        logger.warning("could not record the search in the runs database: %s", exc)
