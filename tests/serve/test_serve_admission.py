"""Admission bounded by the measured service rate: overload is a 429 with an honest Retry-After, never a 504."""

from __future__ import annotations

import concurrent.futures
from types import SimpleNamespace

import httpx
from serve_helpers import ADMIN_KEY, PLAIN_KEY, LiveServer, ScriptedGenerator, auth, make_app

from ragtune.serve.routes_openai import admission
from ragtune.serve.settings import ServeSettings
from ragtune.serve.worker import GenerationWorker


def idle_worker(**options) -> GenerationWorker:
    return GenerationWorker(lambda arm, max_tokens, jobs: [], **options)  # never started: nothing is answered


def test_seconds_per_job_is_a_moving_mean_of_batches():
    worker = idle_worker()
    assert worker.seconds_per_job is None and worker.estimated_wait_s() is None
    worker.record(2.0, 4)  # a batch of 4 in 2 s: 0.5 s per job
    assert worker.seconds_per_job == 0.5
    worker.record(1.0, 1)
    assert abs(worker.seconds_per_job - (0.3 * 1.0 + 0.7 * 0.5)) < 1e-12
    assert abs(worker.estimated_wait_s(ahead=2) - 3 * worker.seconds_per_job) < 1e-12  # 2 ahead + itself


def test_admission_refuses_what_cannot_finish_in_time_and_says_when_to_retry():
    settings = ServeSettings(index="unused", request_timeout_s=120.0, queue_size=64, max_batch=4)
    worker = idle_worker()
    service = SimpleNamespace(settings=settings, worker=worker, admitting=0)
    assert admission(service) is None  # nothing measured, nothing waiting: one batch's worth is admitted
    service.admitting = 4
    reason, message, retry = admission(service)
    assert (reason, retry) == ("overloaded", 1.0) and "measured" in message
    worker.record(10.0, 1)  # 10 s per job: 0.8 * 120 s holds 9 jobs
    service.admitting = 8
    assert admission(service) is None  # 8 ahead + itself = 90 s
    service.admitting = 9
    reason, message, retry = admission(service)  # 100 s of work: 4 s more than fits
    assert reason == "overloaded" and abs(retry - 4.0) < 1e-9 and "120s request timeout" in message
    service.admitting = 64
    assert admission(service)[0] == "queue_full"


def test_overload_is_429_with_retry_after_and_every_admitted_request_is_answered(tmp_path):
    # 0.25 s per answer, one at a time, 4 s timeout: about 12 requests fit; 30 at once used to queue all and 504.
    generator = ScriptedGenerator(delay_s=0.25)
    app, _, _ = make_app(tmp_path, generator=generator, max_batch=1, batch_wait_ms=0, queue_size=64,
                         request_timeout_s=4.0, rate_limit_burst=1000)
    with LiveServer(app) as url:
        def call(_):
            body = {"model": "rag", "messages": [{"role": "user", "content": "How many leave days?"}]}
            return httpx.post(f"{url}/v1/chat/completions", json=body, headers=auth(PLAIN_KEY), timeout=30)

        assert call(0).status_code == 200  # measures the service rate
        with concurrent.futures.ThreadPoolExecutor(30) as pool:
            responses = list(pool.map(call, range(30)))
        metrics = httpx.get(f"{url}/metrics", headers=auth(ADMIN_KEY), timeout=30).text
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 429}, codes
    assert codes.count(429) >= 1 and codes.count(200) >= 2
    for response in responses:
        if response.status_code == 429:
            seconds = int(response.headers["Retry-After"])
            assert seconds >= 1 and f"retry in {seconds}s" in response.json()["error"]["message"]
        else:
            assert response.json()["choices"][0]["message"]["content"]
    assert 'status="504"' not in metrics and 'status="500"' not in metrics
    assert len(generator.prompts) == 1 + codes.count(200)  # every admitted request was answered, nothing more
