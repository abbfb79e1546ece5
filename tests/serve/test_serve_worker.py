"""The generation worker: bounded queue, dynamic batching by (arm, max_tokens), cancelled jobs skipped.

Ordering is synchronised with events, never with sleeps: `started` says the worker has taken a batch, and the
batch blocks on `gate` until the test has queued what it needs behind it.
"""

from __future__ import annotations

import threading

import pytest

from ragtune.serve.worker import GenerationWorker, QueueFullError
from ragtune.types import Prediction


class Recorder:
    """Answers jobs in upper case; each call sets `started`, then waits for `gate` (when given)."""

    def __init__(self, gate: threading.Event | None = None):
        self.batches: list[tuple[str, int, list[str]]] = []
        self.gate = gate
        self.started = threading.Event()

    def __call__(self, arm, max_tokens, jobs):
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        self.batches.append((arm, max_tokens, [j.question for j in jobs]))
        return [Prediction(question=j.question, answer=j.question.upper(), arm=arm) for j in jobs]


def test_concurrent_jobs_are_batched_by_key_in_order():
    gate = threading.Event()
    recorder = Recorder(gate=gate)
    worker = GenerationWorker(recorder, queue_size=16, max_batch=3, batch_wait_s=0.0)
    first = worker.submit("rag", "q0", [], 16)  # taken at once; blocks on the gate
    assert recorder.started.wait(10)
    futures = [worker.submit("rag" if i % 2 else "base", f"q{i}", [], 16) for i in range(1, 8)]
    assert worker.depth() == 7
    gate.set()
    answers = [f.result(5).answer for f in [first, *futures]]
    worker.stop()
    assert answers == [f"Q{i}" for i in range(8)]
    assert recorder.batches[0] == ("rag", 16, ["q0"])
    sizes = [len(b[2]) for b in recorder.batches[1:]]
    assert max(sizes) == 3 and sum(sizes) == 7
    for arm, _, questions in recorder.batches:  # a batch never mixes arms
        assert all((int(q[1:]) % 2 == 1 or q == "q0") == (arm == "rag") for q in questions)


def test_full_queue_refuses_at_once():
    gate = threading.Event()
    recorder = Recorder(gate=gate)
    worker = GenerationWorker(recorder, queue_size=2, max_batch=1, batch_wait_s=0.0)
    worker.submit("rag", "running", [], 8)
    assert recorder.started.wait(10)  # the running job has left the queue
    worker.submit("rag", "a", [], 8)
    worker.submit("rag", "b", [], 8)
    with pytest.raises(QueueFullError, match="queue full"):
        worker.submit("rag", "c", [], 8)
    gate.set()
    worker.stop()


def test_cancelled_jobs_are_skipped_and_errors_reach_callers():
    gate = threading.Event()
    recorder = Recorder(gate=gate)
    worker = GenerationWorker(recorder, queue_size=8, max_batch=4, batch_wait_s=0.0)
    worker.submit("rag", "first", [], 8)
    assert recorder.started.wait(10)
    cancelled = worker.submit("rag", "timed-out", [], 8)
    kept = worker.submit("rag", "kept", [], 8)
    assert cancelled.cancel()
    gate.set()
    assert kept.result(5).answer == "KEPT"
    assert all("timed-out" not in b[2] for b in recorder.batches)
    worker.stop()

    def broken(arm, max_tokens, jobs):
        raise RuntimeError("model exploded")

    failing = GenerationWorker(broken, queue_size=4)
    with pytest.raises(RuntimeError, match="model exploded"):
        failing.submit("rag", "x", [], 8).result(5)
    assert failing.submit("rag", "y", [], 8).exception(5) is not None  # the worker survived the error
    failing.stop()


def test_one_bad_prompt_fails_only_its_own_request():
    """A prompt too long for the model raises for the whole batched generate call; the batch is then answered one
    job at a time, so the callers batched with it still get their answers (once they got its 400)."""
    from ragtune.errors import InputError

    gate = threading.Event()
    calls: list[list[str]] = []
    started = threading.Event()

    def model(arm, max_tokens, jobs):
        started.set()
        assert gate.wait(10)
        calls.append([j.question for j in jobs])
        if any(j.question == "poison" for j in jobs):
            raise InputError("prompt of 8367 tokens exceeds the model's context")
        return [Prediction(question=j.question, answer=j.question.upper(), arm=arm) for j in jobs]

    worker = GenerationWorker(model, queue_size=8, max_batch=4, batch_wait_s=0.0)
    worker.submit("rag", "first", [], 8)
    assert started.wait(10)
    innocent, poison, other = (worker.submit("rag", q, [], 8) for q in ("innocent", "poison", "other"))
    gate.set()
    assert innocent.result(5).answer == "INNOCENT" and other.result(5).answer == "OTHER"
    with pytest.raises(InputError, match="exceeds the model's context"):
        poison.result(5)
    assert calls[1] == ["innocent", "poison", "other"] and calls[2:] == [["innocent"], ["poison"], ["other"]]
    worker.stop()
