"""Cost model, payback and efficiency figures on hand-computed values."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from ragtune.errors import InputError
from ragtune.evaluate.cost import CostModel, Payback, monthly_training_cost, payback
from ragtune.evaluate.efficiency import dir_size_bytes, latency_summary, peak_memory_mb, percentile, tokens_per_s


def test_cost_per_1k_queries_hand_computed():
    model = CostModel(cpu_hour_usd=0.10)
    # 1,000 queries × 1 s = 1000 s = 0.2778 h at $0.10/h
    assert model.cost_per_1k_queries(1000.0) == pytest.approx(0.1 * 1000 / 3600)
    assert CostModel(cpu_hour_usd=0.10, concurrency=2).cost_per_1k_queries(1000.0) == pytest.approx(0.05 * 1000 / 3600)
    assert CostModel(gpu_hour_usd=3.6, serve_on="gpu").cost_per_1k_queries(100.0) == pytest.approx(0.1)
    assert math.isnan(model.cost_per_1k_queries(float("nan")))


def test_one_off_costs():
    model = CostModel(cpu_hour_usd=0.2, gpu_hour_usd=2.0, train_on="gpu")
    assert model.training_cost(1800) == pytest.approx(1.0)  # half an hour of GPU
    assert model.indexing_cost(3600) == pytest.approx(0.2)  # indexing runs on the serving CPU


def test_cost_model_rejects_bad_values():
    with pytest.raises(ValidationError):
        CostModel(cpu_hour_usd=-1)
    with pytest.raises(ValidationError):
        CostModel(unknown=1)


def test_payback_hand_computed():
    assert payback(1.0, 0.5, 1000) == Payback(queries=2000.0, days=2.0)
    assert payback(1.0, 0.0, 1000) == Payback(queries=None, days=None)  # never pays back
    assert payback(1.0, -0.1, 1000) == Payback(queries=None, days=None)
    assert payback(0.0, 0.1, 1000) == Payback(queries=0.0, days=0.0)
    assert payback(1.0, 0.5, 0) == Payback(queries=2000.0, days=None)
    assert monthly_training_cost(0.7, "weekly") == pytest.approx(3.0)
    assert monthly_training_cost(0.7, "static") == 0.0


def test_latency_percentiles_and_tokens_per_s():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10.0], 95) == 10.0
    assert math.isnan(percentile([], 50))
    summary = latency_summary([10, 10, 10, 10, 10], [100, 200, 300, 400, 500])
    assert summary["latency_ms_p50"] == 310
    assert summary["latency_ms_p95"] == pytest.approx(490)  # 410 + 0.8 × (510 − 410)
    assert summary["retrieve_ms_p50"] == 10
    assert summary["generate_ms_p95"] == pytest.approx(480)
    assert summary["latency_ms_mean"] == 310
    assert tokens_per_s([40, 60], [1000, 1000]) == 50.0
    assert math.isnan(tokens_per_s([5], [0]))
    with pytest.raises(InputError):
        latency_summary([1], [1, 2])


def test_dir_size_and_memory(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 100)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"y" * 23)
    assert dir_size_bytes(tmp_path) == 123
    assert dir_size_bytes(tmp_path / "a.bin") == 100
    assert peak_memory_mb() > 10
    with pytest.raises(InputError, match="not found"):
        dir_size_bytes(tmp_path / "missing")


def test_peak_memory_can_be_reset_per_arm():
    import sys

    import numpy as np

    from ragtune.evaluate.efficiency import peak_memory_mb, reset_peak_memory

    block = np.ones(50_000_000)  # 400 MB resident
    block.sum()
    del block
    before = peak_memory_mb()
    if not (sys.platform.startswith("linux") and reset_peak_memory()):
        pytest.skip("peak memory cannot be reset on this OS")
    assert peak_memory_mb() < before - 300  # the earlier 400 MB no longer counts


def test_given_adapter_training_time_comes_from_its_manifest(tmp_path):
    import json

    from ragtune.workflows.compare import _adapter_train_seconds

    (tmp_path / "ragtune_adapter.json").write_text(json.dumps({"metrics": {"train_seconds": 249.5}}))
    assert _adapter_train_seconds(str(tmp_path)) == 249.5
    assert _adapter_train_seconds(str(tmp_path / "missing")) == 0.0
    assert _adapter_train_seconds(None) == 0.0
