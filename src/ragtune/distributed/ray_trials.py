"""A settings search's trials on Ray: several configurations answered at once by actors that load the model once.

>>> run_tune(config, trials_on=RayTrials("local", workers=2))   # doctest: +SKIP

The search (ragtune.workflows.search, through its ask-and-tell loop ragtune.workflows.trial_loop) asks optuna for
up to `workers` configurations at once and tells each result as it comes back; it records them as the serial
search does (trials.jsonl, best.json, the runs database), so `--resume` continues either. Each actor builds the
arm's trial runner once (ragtune.workflows.answer_trials.TrialSpec: the generator, the index) and answers every
trial given to it; the index of a trial's chunk size is built on the driver before the trial starts (one builder
per folder), and the actors open it.

No trial is pruned on Ray: an actor cannot hear the pruner in the middle of a trial, so each answers every
validation question; its per-batch figures are recorded (`intermediate`) for a resumed serial search's pruner.
A trial whose worker raised or died (the actor restarts) is tried again on another worker, up to
`max_attempts`; a trial that still fails is recorded as failed — never chosen, never dropped — and `--resume`
runs it again. Searches that train adapters stay on the driver, one trial at a time (ragtune.workflows.tune).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ragtune.distributed.ray_cluster import LOCAL, ray_session, worker_env
from ragtune.distributed.ray_compare import failure_reason
from ragtune.workflows.answer_trials import TrialSpec
from ragtune.workflows.trial_types import NOT_RUN, TrialMetrics, TrialSkipped
from ragtune.workflows.search_space import Choice
from ragtune.workflows.trial_loop import TrialOutcome

logger = logging.getLogger(__name__)


class TrialWorker:
    """A Ray actor: answers the validation questions with one configuration per call, through the runner it built
    from `spec` on its first call (the model loaded once)."""

    def __init__(self, spec: TrialSpec, before_trial: Callable[[dict[str, Choice]], None] | None = None):
        self.spec, self.before_trial = spec, before_trial  # before_trial: a test seam (raise or exit to fail)
        self._runner: Any = None

    def run(self, params: dict[str, Choice]) -> TrialOutcome:
        if self.before_trial is not None:
            self.before_trial(params)
        if self._runner is None:
            self._runner = self.spec.runner()
        steps: list[tuple[int, float]] = []

        def report(metrics: TrialMetrics) -> None:
            steps.append((metrics.n, metrics.f1))

        t0 = time.perf_counter()
        try:
            metrics = self._runner(params, report)
        except TrialSkipped as exc:
            return TrialOutcome(NOT_RUN, time.perf_counter() - t0, skipped=str(exc))
        return TrialOutcome(metrics, time.perf_counter() - t0, tuple(steps))


class RayTrials:
    """A search's TrialPool on Ray: `workers` actors per arm searched.

    address: 'local' starts a loopback instance (stopped after), else a cluster to join (its nodes see the index,
    the search folder and the models at the same paths).
    """

    def __init__(self, address: str = LOCAL, workers: int = 2, max_attempts: int = 3,
                 before_trial: Callable[[dict[str, Choice]], None] | None = None):
        self.address, self.workers, self.max_attempts = address, workers, max_attempts
        self.before_trial = before_trial

    @contextmanager
    def session(self) -> Iterator[Any]:
        """Ray connected for the block (several arms' searches share it)."""
        with ray_session(self.address, num_cpus=max(os.cpu_count() or 1, self.workers)) as ray:
            yield ray

    @contextmanager
    def executor(self, spec: TrialSpec, prepare: Callable[[Mapping[str, Choice]], Any]) -> Iterator[RayExecutor]:
        """One arm's trials on up to `workers` actors (started as trials need them, killed after)."""
        with self.session() as ray:
            worker_class = ray.remote(TrialWorker).options(
                num_cpus=1, max_restarts=self.max_attempts, max_task_retries=0,  # retries: ours, on another worker
                runtime_env={"env_vars": worker_env()},
            )
            executor = RayExecutor(ray, lambda: worker_class.remote(spec, self.before_trial), self.workers,
                                   prepare, self.max_attempts)
            try:
                yield executor
            finally:
                for actor in executor.actors:
                    ray.kill(actor)


class RayExecutor:
    """The TrialExecutor of one arm: `width` trials at once, a failed one retried up to `max_attempts` times."""

    def __init__(self, ray: Any, new_actor: Callable[[], Any], width: int,
                 prepare: Callable[[Mapping[str, Choice]], Any], max_attempts: int):
        self.ray, self.new_actor, self.width, self.prepare = ray, new_actor, width, prepare
        self.max_attempts = max_attempts
        self.actors: list[Any] = []
        self._idle: deque[int] = deque()
        self._pending: dict[Any, tuple[int, dict[str, Choice], int, int]] = {}  # ref -> (number, params, actor, try)
        self._done: deque[tuple[int, TrialOutcome]] = deque()  # trials settled here (skipped before starting)

    def start(self, number: int, params: dict[str, Choice], trial: Any) -> None:
        try:
            self.prepare(params)  # its chunk size's index, built here (one builder per folder)
        except TrialSkipped as exc:
            logger.warning("%s skipped: %s", params, exc)
            self._done.append((number, TrialOutcome(NOT_RUN, 0.0, skipped=str(exc))))
            return
        self._submit(number, params, 1)

    def wait(self) -> tuple[int, TrialOutcome]:
        while not self._done:
            [ref], _ = self.ray.wait(list(self._pending), num_returns=1)
            number, params, actor, attempt = self._pending.pop(ref)
            self._idle.append(actor)  # last in line: a retry goes to another idle worker first
            try:
                self._done.append((number, self.ray.get(ref)))
            except self.ray.exceptions.RayError as exc:
                reason = failure_reason(exc)
                if attempt < self.max_attempts:
                    logger.warning("trial %d %s failed (attempt %d of %d), retrying: %s", number, params, attempt,
                                   self.max_attempts, reason)
                    self._submit(number, params, attempt + 1)
                else:
                    self._done.append((number, TrialOutcome(
                        NOT_RUN, 0.0, failed=f"{reason} (after {attempt} attempt(s) on Ray)")))
        return self._done.popleft()

    def _submit(self, number: int, params: dict[str, Choice], attempt: int) -> None:
        if not self._idle:  # the loop starts at most `width` trials: there is room for another actor
            self.actors.append(self.new_actor())
            self._idle.append(len(self.actors) - 1)
        actor = self._idle.popleft()
        self._pending[self.actors[actor].run.remote(params)] = (number, params, actor, attempt)
