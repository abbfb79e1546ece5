"""The generation worker: a bounded job queue drained by one thread that batches concurrent requests.

Requests never generate on the event loop. A request submits a job and awaits its future; when the queue
is full the submit fails at once (the server answers 429). The worker takes the oldest job, then waits up
to `batch_wait_s` for more jobs with the same (arm, max_tokens) and answers up to `max_batch` of them in
one batched generate call — with a CPU-bound model that is several times the throughput of one-by-one.
Jobs with another key wait, in order, for the next round.

The worker measures its service rate — an exponentially weighted mean of seconds per answered job (a
batch's time over its size) — so that admission can refuse work that would not finish within the request
timeout (`estimated_wait_s`), instead of queueing it to time out.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.types import Hit, Prediction

log = logging.getLogger(__name__)

RATE_WEIGHT = 0.3  # weight of the newest batch in the seconds-per-job moving mean


class QueueFullError(RagtuneError):
    """The generation queue is full: the server is overloaded (HTTP 429)."""


@dataclass
class Job:
    """One question to answer. `hits` are already access-filtered and screened (None = closed-book arm)."""

    arm: str
    question: str
    hits: list[Hit] | None
    max_tokens: int
    on_text: Callable[[str], Any] | None = None  # set for a streamed request: answered alone, text pushed here
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)

    @property
    def key(self) -> tuple[str, int, int]:
        # A streamed job gets a key of its own, so it is never batched with others.
        return (self.arm, self.max_tokens, id(self) if self.on_text is not None else 0)


AnswerBatch = Callable[[str, int, Sequence["Job"]], list[Prediction]]


class GenerationWorker:
    """One thread answering queued jobs in dynamic batches via `answer_batch(arm, max_tokens, jobs)`."""

    def __init__(
        self,
        answer_batch: AnswerBatch,
        queue_size: int = 64,
        max_batch: int = 8,
        batch_wait_s: float = 0.005,
        on_batch: Callable[[int], Any] | None = None,
    ):
        self._answer_batch = answer_batch
        self._queue: queue.Queue[Job] = queue.Queue(maxsize=queue_size)
        self._pending: collections.deque[Job] = collections.deque()  # taken from the queue, other key
        self.max_batch = max_batch
        self.batch_wait_s = batch_wait_s
        self._on_batch = on_batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._running = 0  # jobs in the batch being answered now
        self._job_s: float | None = None  # EWMA of seconds per answered job; None until a batch was answered

    def running(self) -> int:
        """Jobs being answered now (taken from the queue)."""
        return self._running

    @property
    def seconds_per_job(self) -> float | None:
        """The measured service cost: a moving mean of seconds per answered job (None before the first batch)."""
        return self._job_s

    def record(self, seconds: float, jobs: int) -> None:
        """Fold one answered batch into the service-rate estimate."""
        per_job = seconds / max(1, jobs)
        self._job_s = per_job if self._job_s is None else RATE_WEIGHT * per_job + (1 - RATE_WEIGHT) * self._job_s

    def estimated_wait_s(self, ahead: int = 0) -> float | None:
        """Seconds until a job submitted now would be answered: every job waiting or running, `ahead` more
        (admitted elsewhere, not yet queued) and itself, at the measured seconds per job. None before any
        batch was measured."""
        if self._job_s is None:
            return None
        return (self.depth() + self._running + ahead + 1) * self._job_s

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="ragtune-generate", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current batch; jobs still queued fail with QueueFullError."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for job in self._drain():
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(QueueFullError("server shutting down"))

    def depth(self) -> int:
        """Jobs waiting (not yet being answered)."""
        return self._queue.qsize() + len(self._pending)

    def submit(self, arm: str, question: str, hits: list[Hit] | None, max_tokens: int,
               on_text: Callable[[str], Any] | None = None) -> Future:
        """Queue a job; its future resolves to a Prediction. QueueFullError at once when the queue is full.

        With `on_text`, the job is answered on its own and its text is pushed to on_text while it is decoded.
        """
        self.start()
        job = Job(arm, question, hits, max_tokens, on_text)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFullError(f"generation queue full ({self._queue.maxsize} waiting)") from None
        return job.future

    # ---- the worker thread ---------------------------------------------------------------------------------
    def _drain(self) -> list[Job]:
        jobs = list(self._pending)
        self._pending.clear()
        while True:
            try:
                jobs.append(self._queue.get_nowait())
            except queue.Empty:
                return jobs

    def _next_batch(self) -> list[Job]:
        if self._pending:
            first = self._pending.popleft()
        else:
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                return []
        batch = [first]
        for job in list(self._pending):  # older jobs of the same key go first
            if len(batch) >= self.max_batch:
                break
            if job.key == first.key:
                self._pending.remove(job)
                batch.append(job)
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            (batch if job.key == first.key else self._pending).append(job)
        return batch

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = [job for job in self._next_batch() if job.future.set_running_or_notify_cancel()]
            if not batch:
                continue  # nothing queued, or every job was cancelled (timed out) while waiting
            arm, max_tokens = batch[0].arm, batch[0].max_tokens
            self._running = len(batch)
            start = time.monotonic()
            try:
                predictions = self._answer_batch(arm, max_tokens, batch)
                if len(predictions) != len(batch):
                    raise RagtuneError(f"answer_batch returned {len(predictions)} answers for {len(batch)} jobs")
            except Exception as exc:  # noqa: BLE001 — handed to the waiting request(s), never kills the worker
                if len(batch) > 1:  # one job's bad prompt (e.g. too long for the model) must not fail the others
                    log.warning("generation failed for a batch of %d (arm %s): %s; answering each alone",
                                len(batch), arm, exc)
                    for job in batch:
                        self._answer_alone(arm, max_tokens, job)
                    self._running = 0
                    continue
                self._running = 0
                log.exception("generation failed (arm %s)", arm)
                batch[0].future.set_exception(exc)
                continue
            self.record(time.monotonic() - start, len(batch))
            self._running = 0
            if self._on_batch is not None:
                self._on_batch(len(batch))
            for job, prediction in zip(batch, predictions):
                job.future.set_result(prediction)

    def _answer_alone(self, arm: str, max_tokens: int, job: Job) -> None:
        start = time.monotonic()
        try:
            (prediction,) = self._answer_batch(arm, max_tokens, [job])
        except Exception as exc:  # noqa: BLE001 — this job's own error, for its request only
            log.info("generation failed for one job (arm %s): %s", arm, exc)
            job.future.set_exception(exc)
            return
        self.record(time.monotonic() - start, 1)
        job.future.set_result(prediction)
