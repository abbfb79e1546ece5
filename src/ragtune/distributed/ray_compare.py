"""Comparison shards on Ray: questions x arms answered by actor workers that load each model and adapter once.

>>> run_compare(config, executor=RayAnswerExecutor("local", workers=2))   # doctest: +SKIP

`run_compare` hands this executor one job per arm and question group; each job is cut into shards of whole
answer batches (the single process's batches, so greedy decoding gives the same predictions), and shards go to
idle workers. Rows come back to the driver as shards finish and are appended to the partial run, so `--resume`
and the results, predictions and report are exactly the single-process ones. A shard whose worker raised or died
(the actor restarts) is tried again on another worker, up to `max_attempts`; a shard that still fails is reported
in a BackendError once every other shard is done — never silently dropped — and `--resume` redoes only it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ragtune.config import GenerateConfig
from ragtune.distributed.ray_cluster import LOCAL, ray_session, worker_env
from ragtune.errors import BackendError
from ragtune.types import Example
from ragtune.workflows.compare import AnswerJob, CompareConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    """Whole answer batches of one job: what one worker call answers."""

    number: int
    arm: str
    generate: GenerateConfig
    index_path: str
    examples: list[Example]
    freshness: bool

    def describe(self) -> str:
        group = " (freshness)" if self.freshness else ""
        return f"shard {self.number}: arm {self.arm}{group}, questions {self.examples[0].qid}..{self.examples[-1].qid}"


def make_shards(jobs: list[AnswerJob], batch_size: int, batches_per_shard: int = 1) -> list[Shard]:
    """Cut every job into shards of `batches_per_shard` whole batches (the last may be shorter)."""
    size = batch_size * batches_per_shard
    shards = []
    for job in jobs:
        for start in range(0, len(job.examples), size):
            shards.append(Shard(len(shards), job.arm, job.generate, job.index_path,
                                job.examples[start : start + size], job.freshness))
    return shards


class AnswerWorker:
    """A Ray actor: answers shards with the arm's generator (loaded once per config) over the shard's index."""

    def __init__(self, mode: str, k: int, batch_size: int, before_shard: Callable[[Shard], None] | None = None,
                 retrieve_options: dict[str, Any] | None = None):
        self.mode, self.k, self.batch_size = mode, k, batch_size
        self.retrieve_options = dict(retrieve_options or {})  # the mode's +rerank settings (CompareConfig)
        self.before_shard = before_shard  # a test seam: raise or exit here to fail a shard
        self._retrievers: dict[str, tuple[Any, Any]] = {}

    def answer(self, shard: Shard) -> tuple[list[dict[str, Any]], float]:
        """The shard's prediction rows (as run_arm makes them) and this worker's peak memory in MiB."""
        from ragtune.arms import ARMS
        from ragtune.evaluate.efficiency import peak_memory_mb
        from ragtune.evaluate.harness import run_arm
        from ragtune.generate import load_generator
        from ragtune.pipeline import AnswerSettings

        if self.before_shard is not None:
            self.before_shard(shard)
        generator = load_generator(shard.generate)  # cached per process and config: loaded once per worker
        settings = AnswerSettings.resolve(shard.generate)
        index = retriever = None
        if ARMS[shard.arm].retrieval:
            index, retriever = self._open(shard.index_path)
        embedder = index.embedder if index is not None else None
        rows = run_arm(shard.arm, shard.examples, generator, retriever, dataclasses.replace(settings, embedder=embedder),
                       k=self.k, batch_size=self.batch_size, freshness=shard.freshness)
        return rows, peak_memory_mb()

    def _open(self, index_path: str) -> tuple[Any, Any]:
        if index_path not in self._retrievers:
            from ragtune.index import Index
            from ragtune.retrieve import open_retriever

            index = Index.open(index_path)
            self._retrievers[index_path] = (index, open_retriever(index, self.mode, **self.retrieve_options))
        return self._retrievers[index_path]


class RayAnswerExecutor:
    """run_compare's executor on Ray: `workers` actors, shards of `batches_per_shard` answer batches.

    address: 'local' starts a loopback instance for the run (stopped after), else a cluster to join.
    """

    def __init__(self, address: str = LOCAL, workers: int = 2, batches_per_shard: int = 1, max_attempts: int = 3,
                 before_shard: Callable[[Shard], None] | None = None):
        self.address, self.workers, self.batches_per_shard = address, workers, batches_per_shard
        self.max_attempts = max_attempts
        self.before_shard = before_shard

    def __call__(self, config: CompareConfig, jobs: list[AnswerJob], on_rows: Callable[[list[dict[str, Any]]], None],
                 advance: Callable[[int], Any]) -> dict[str, float]:
        shards = make_shards(jobs, config.batch_size, self.batches_per_shard)
        if not shards:
            return {}
        num_cpus = max(os.cpu_count() or 1, self.workers)
        with ray_session(self.address, num_cpus=num_cpus) as ray:
            worker_class = ray.remote(AnswerWorker).options(
                num_cpus=1, max_restarts=self.max_attempts, max_task_retries=0,  # retries: ours, on another worker
                runtime_env={"env_vars": worker_env()},
            )
            actors = [worker_class.remote(config.mode, config.k, config.batch_size, self.before_shard,
                                          retrieve_options=config.retrieve_options())
                      for _ in range(min(self.workers, len(shards)))]
            try:
                return self._run(ray, actors, shards, on_rows, advance)
            finally:
                for actor in actors:
                    ray.kill(actor)

    def _run(self, ray: Any, actors: list[Any], shards: list[Shard], on_rows: Callable[[list[dict[str, Any]]], None],
             advance: Callable[[int], Any]) -> dict[str, float]:
        queue = deque((shard, 1) for shard in shards)
        idle = deque(range(len(actors)))
        pending: dict[Any, tuple[Shard, int, int]] = {}  # result ref -> (shard, actor, attempt)
        peaks: dict[str, float] = {}
        failed: list[tuple[Shard, str]] = []
        while queue or pending:
            while queue and idle:
                (shard, attempt), actor = queue.popleft(), idle.popleft()
                pending[actors[actor].answer.remote(shard)] = (shard, actor, attempt)
            [ref], _ = ray.wait(list(pending), num_returns=1)
            shard, actor, attempt = pending.pop(ref)
            idle.append(actor)  # last in line: a retry goes to another idle worker first
            try:
                rows, peak = ray.get(ref)
            except ray.exceptions.RayError as exc:
                reason = failure_reason(exc)
                if attempt < self.max_attempts:
                    logger.warning("%s failed (attempt %d of %d), retrying: %s", shard.describe(), attempt,
                                   self.max_attempts, reason)
                    queue.append((shard, attempt + 1))
                else:
                    failed.append((shard, reason))
                continue
            on_rows(rows)
            advance(len(shard.examples))
            peaks[shard.arm] = max(peaks.get(shard.arm, 0.0), peak)
        if failed:
            shown = "; ".join(f"{s.describe()}: {why}" for s, why in failed[:3])
            raise BackendError(
                f"{len(failed)} of {len(shards)} shard(s) failed after {self.max_attempts} attempt(s) on Ray: {shown} "
                "— the other shards' answers are kept: rerun with --resume to answer only the failed ones"
            )
        return peaks


def failure_reason(exc: BaseException) -> str:
    """The first line of why a Ray call failed (the worker's own exception when it raised)."""
    cause = getattr(exc, "cause", None) or exc  # a RayTaskError carries the worker's exception
    text = f"{type(cause).__name__}: {cause}".strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
