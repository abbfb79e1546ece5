"""The real demo path (`ragtune demo --quick`) with the bundled models, in a private cache."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_quick_demo_runs_every_arm_and_the_freshness_test(tmp_path, monkeypatch):
    from ragtune.workflows.demo import ARMS, QUICK_LIMIT, build_demo_index, demo_adapters, run_demo
    from ragtune.paths import cache_dir

    models = cache_dir() / "models"  # reuse the converted bundled LLM; everything else starts empty
    (tmp_path / "cache").mkdir()
    if models.is_dir():
        (tmp_path / "cache" / "models").symlink_to(models, target_is_directory=True)
    monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path / "cache"))
    run_dir = run_demo(tmp_path / "run", quick=True)

    results = json.loads((run_dir / "results.json").read_text())
    assert list(results["arms"]) == list(ARMS)
    assert results["setup"]["questions"] == QUICK_LIMIT
    for entry in results["arms"].values():
        assert 0.0 <= entry["metrics"]["f1"] <= 1.0
    assert set(results["freshness"]["arms"]) == set(ARMS)
    assert results["recommendation"]["arm"] in ARMS
    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len([r for r in rows if not r["freshness"]]) == QUICK_LIMIT * len(ARMS)
    assert "<svg" in (run_dir / "report.html").read_text() or "plotly" in (run_dir / "report.html").read_text()

    adapters = list((tmp_path / "cache" / "demo" / "adapters").iterdir())
    assert len(adapters) == 1  # cached by content: a second run reuses them
    stamp = (adapters[0] / "raft" / "ragtune_adapter.json").stat().st_mtime
    # A second run resolves its adapters exactly as run_demo does (same index, questions, settings): the cached
    # ones come back untouched. (Not a whole second demo: answering again would only repeat the first run.)
    work = tmp_path / "cache" / "demo"
    index = build_demo_index(work)
    assert index.config.embed.precision == "fp32"  # the reference table's index (build_demo_index), not int8
    again = demo_adapters(index, work, work / "questions_train.jsonl", quick=True)
    assert again == {kind: str(adapters[0] / kind) for kind in ("sft", "raft")}
    assert (adapters[0] / "raft" / "ragtune_adapter.json").stat().st_mtime == stamp
