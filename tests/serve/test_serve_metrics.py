"""The metrics kept by prometheus_client: one registry per app, the same families and labels as before."""

from __future__ import annotations

import pytest

pytest.importorskip("prometheus_client")

from ragtune.serve.metrics import Metrics, server_metrics  # noqa: E402

FAMILIES = [
    "ragtune_requests_total",
    "ragtune_request_duration_seconds",
    "ragtune_queue_depth",
    "ragtune_generation_batch_size",
    "ragtune_rate_limited_total",
    "ragtune_screened_chunks_total",
    "ragtune_acl_dropped_hits_total",
    "ragtune_document_writes_total",
]


def test_server_metrics_expose_every_family():
    text = server_metrics(lambda: 3).render()
    for family in FAMILIES:
        assert f"# TYPE {family} " in text
    assert "ragtune_queue_depth 3.0" in text


def test_two_apps_in_one_process_count_separately():
    first, second = server_metrics(lambda: 0), server_metrics(lambda: 0)
    first.inc("ragtune_rate_limited_total", reason="rate_limit")
    first.inc("ragtune_rate_limited_total", 2, reason="rate_limit")
    assert first.value("ragtune_rate_limited_total", reason="rate_limit") == 3.0
    assert second.value("ragtune_rate_limited_total", reason="rate_limit") == 0.0
    assert 'ragtune_rate_limited_total{reason="rate_limit"} 3.0' in first.render()
    assert 'reason="rate_limit"' not in second.render()


def test_histogram_buckets_sum_and_count():
    metrics = server_metrics(lambda: 0)
    for size in (1, 3, 3, 40):
        metrics.observe("ragtune_generation_batch_size", size)
    text = metrics.render()
    assert 'ragtune_generation_batch_size_bucket{le="1.0"} 1.0' in text
    assert 'ragtune_generation_batch_size_bucket{le="4.0"} 3.0' in text
    assert 'ragtune_generation_batch_size_bucket{le="+Inf"} 4.0' in text
    assert "ragtune_generation_batch_size_sum 47.0" in text
    assert "ragtune_generation_batch_size_count 4.0" in text


def test_undeclared_label_is_refused():
    metrics = Metrics()
    metrics.counter("demo_total", "Demo.", labels=("kind",))
    with pytest.raises(ValueError):
        metrics.inc("demo_total", colour="red")
