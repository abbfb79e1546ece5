"""The ask-and-tell loop of a settings search (ragtune.workflows.search), serial or several trials at once.

The loop asks optuna's study for configurations (`study.ask()`), hands each new one to an executor, and tells the
study each result as it comes back (`study.tell`), so one loop serves both the serial search (InProcessTrials: one
trial at a time in this process, its running figures told to the pruner after each batch) and trials on Ray
(ragtune.distributed.ray_trials: `width` trials at once on actors that load the model once each). Every result is
recorded the same way (trials.jsonl, as it finishes), numbered in the order the study asked for it — so an
exhaustive grid gives each configuration the same number serially and on Ray, and greedy decoding the same figures.

A configuration asked again while it is still running waits for that run's result (one configuration is answered
once); one already recorded (this search, or a resumed one's trials.jsonl) is told its recorded result at once.
A trial the executor could not run (a worker that kept failing) is recorded as failed and told to the study as
failed: never chosen, never lost, and run again by `--resume`.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from ragtune.workflows.search_space import Choice, SearchSpace
from ragtune.workflows.trial_types import (
    NOT_RUN,
    Limits,
    Trial,
    TrialMetrics,
    TrialRunner,
    TrialSkipped,
    params_key,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialOutcome:
    """What running one configuration gave: its figures (a pruned trial's: the questions answered by then), the
    seconds it took, the running figures reported per batch, and why it was skipped or failed, if it was."""

    metrics: TrialMetrics
    seconds: float
    steps: tuple[tuple[int, float], ...] = ()  # (questions answered, running F1)
    skipped: str | None = None
    pruned: bool = False
    failed: str | None = None
    training: dict[str, Any] | None = None


class TrialExecutor(Protocol):
    """Runs trials: `start` one (its optuna trial given, for live pruning), `wait` for any started one to finish.
    At most `width` are started and not yet waited for."""

    width: int

    def start(self, number: int, params: dict[str, Choice], trial: Any) -> None: ...

    def wait(self) -> tuple[int, TrialOutcome]: ...


class TrialPool(Protocol):
    """Where a search's trials run several at once (ragtune.distributed.ray_trials.RayTrials): `session()` holds
    the connection for several arms' searches; `executor(spec, prepare)` runs one arm's trials, each built from
    `spec` (an answer_trials.TrialSpec) once per worker, `prepare(params)` called here before a trial starts (it
    builds the trial's index; TrialSkipped: the trial cannot run)."""

    def session(self) -> AbstractContextManager[Any]: ...

    def executor(self, spec: Any, prepare: Callable[[Mapping[str, Choice]], Any]
                 ) -> AbstractContextManager[TrialExecutor]: ...


class _Pruned(Exception):
    """Raised through the runner by `report` when the pruner stops the trial."""


class InProcessTrials:
    """The serial executor: runs each trial in this process as it starts; with `pruning` the runner reports its
    running figures after each batch and the study's pruner may stop it there (never the `defaults`)."""

    width = 1

    def __init__(self, runner: TrialRunner, *, pruning: bool, defaults: Mapping[str, Choice], arm: str = "",
                 describe_training: Callable[[Mapping[str, Choice]], dict[str, Any] | None] | None = None):
        self.runner, self.pruning, self.defaults, self.arm = runner, pruning, dict(defaults), arm
        self.describe_training = describe_training
        self._done: deque[tuple[int, TrialOutcome]] = deque()

    def start(self, number: int, params: dict[str, Choice], trial: Any) -> None:
        self._done.append((number, self._run(params, trial)))

    def wait(self) -> tuple[int, TrialOutcome]:
        return self._done.popleft()

    def _run(self, params: dict[str, Choice], trial: Any) -> TrialOutcome:
        steps: list[tuple[int, float]] = []
        partial: list[TrialMetrics] = []

        def report(metrics: TrialMetrics) -> None:
            steps.append((metrics.n, metrics.f1))
            partial[:] = [metrics]
            trial.report(metrics.f1, metrics.n)
            if params != self.defaults and trial.should_prune():  # the defaults' figures only guide the pruner
                raise _Pruned

        t0 = time.perf_counter()
        pruned, skipped = False, None
        try:
            metrics = self.runner(params, report) if self.pruning else self.runner(params)
        except TrialSkipped as exc:
            metrics, skipped = NOT_RUN, str(exc)
            logger.warning("%s: %s skipped: %s", self.arm, params, skipped)
        except _Pruned:
            metrics, pruned = partial[0], True
            logger.info("%s: %s pruned after %d questions (F1 %.3f so far)", self.arm, params, metrics.n, metrics.f1)
        return TrialOutcome(metrics, time.perf_counter() - t0, tuple(steps), skipped=skipped, pruned=pruned,
                            training=self.describe_training(params) if self.describe_training else None)


def run_trials(study: Any, space: SearchSpace, executor: TrialExecutor, *, target: int, max_asks: int,
               recorded: Mapping[str, Trial], limits: Limits, pruning: bool,
               record: Callable[[Trial], None], seen: Mapping[str, Trial] | None = None) -> dict[str, Trial]:
    """Ask the study for configurations until `target` distinct ones have results (or `max_asks` asks: TPE may
    keep proposing the same ones), running the new ones on `executor`; `record(trial)` as each finishes.
    Returns every configuration's result by params_key (the recorded ones it was asked for included); `seen`:
    the results of an earlier call on the same study, which count towards `target` (a search in phases)."""
    import optuna

    seen = dict(seen or {})
    running: dict[int, tuple[str, dict[str, Choice], Any]] = {}  # number -> (key, params, optuna trial)
    waiting: dict[str, list[Any]] = {}  # key -> optuna trials asked again while it runs
    next_number = max((t.number for t in (*recorded.values(), *seen.values())), default=-1) + 1
    asks = 0
    while True:
        while len(seen) + len(running) < target and asks < max_asks and len(running) < executor.width:
            trial = study.ask()
            asks += 1
            params = {p.name: trial.suggest_categorical(p.name, list(p.choices)) for p in space.params}
            key = params_key(params)
            if any(key == k for k, _, _ in running.values()):
                waiting.setdefault(key, []).append(trial)
                continue
            result = seen.get(key)
            if result is None and key in recorded and not recorded[key].retry:  # judged by this search's limits
                result = seen[key] = recorded[key].judged(limits)
                for n, f1 in result.intermediate if pruning else ():  # the pruner hears its running figures again
                    trial.report(f1, n)
            # (a repeat within this search reports nothing: one configuration is one voice in the pruner's median)
            if result is not None:
                _tell(optuna, study, trial, result, limits)
                continue
            running[next_number] = (key, params, trial)
            executor.start(next_number, params, trial)
            next_number += 1
        if not running:
            return seen
        number, outcome = executor.wait()
        key, params, trial = running.pop(number)
        result = Trial(number, params, outcome.metrics, outcome.seconds, False, skipped=outcome.skipped,
                       pruned=outcome.pruned, intermediate=outcome.steps, training=outcome.training,
                       failed=outcome.failed).judged(limits)
        record(result)
        seen[key] = result
        if outcome.failed:
            logger.warning("trial %d %s failed: %s", number, params, outcome.failed)
        else:
            logger.info("trial %d: %s → F1 %.3f, p95 %.0f ms", number, params, result.metrics.f1,
                        result.metrics.latency_ms_p95)
        for asked in (trial, *waiting.pop(key, ())):
            _tell(optuna, study, asked, result, limits)


def _tell(optuna: Any, study: Any, trial: Any, result: Trial, limits: Limits) -> None:
    """Tell the study one asked trial's result: pruned, failed, or its F1 with how far over each limit it is."""
    if result.pruned:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    elif result.failed:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    else:
        _constrain(trial, limits.excess(result.metrics))
        study.tell(trial, result.metrics.f1)


def _constrain(trial: Any, excess: Mapping[str, float]) -> None:
    """Tell the sampler how far over each limit the trial was (<= 0: feasible)."""
    if not excess:
        return
    excess = {name: 1.0 if math.isnan(value) else value for name, value in excess.items()}  # not measured: over
    if hasattr(trial, "set_constraint"):
        for name, value in excess.items():
            trial.set_constraint(name, value)
    else:
        trial.set_user_attr("constraints", list(excess.values()))
