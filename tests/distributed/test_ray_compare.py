"""`compare` on Ray workers: predictions equal the single-process run's; failed shards are retried or reported."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from ragtune.config import EmbedConfig, IndexConfig
from ragtune.errors import BackendError
from ragtune.index import Index
from ragtune.types import Document
from ragtune.workflows.compare import CompareConfig, run_compare

pytestmark = pytest.mark.slow  # a Ray instance and workers that load a (tiny) model: seconds each

TIMINGS = ("retrieve_ms", "generate_ms")
FACTS = [("harbour", "The harbour master is Ilse Varga.", "Who is the harbour master?", "Ilse Varga"),
         ("library", "The library holds 4,200 charts.", "How many charts does the library hold?", "4,200"),
         ("kitchen", "The chef is Anwen Lark.", "Who is the chef?", "Anwen Lark"),
         ("tower", "The tower was built in 1889.", "When was the tower built?", "1889"),
         ("bridge", "The bridge is 300 metres long.", "How long is the bridge?", "300 metres")]


@pytest.fixture()
def setup(tmp_path: Path, tiny_lm_dir: Path, monkeypatch, ray_local) -> dict:
    ray_local.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the failure hooks below, on workers
    monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path / "cache"))
    index = Index.create(tmp_path / "index", IndexConfig(embed=EmbedConfig(model="hash:64")))
    index.add_documents([Document(f"{name}.md", text, name.title()) for name, text, _, _ in FACTS])
    questions = tmp_path / "questions.jsonl"
    rows = [{"id": f"{name}{i}", "question": q, "answer": a, "doc_id": f"{name}.md"}
            for i in range(2) for name, _, q, a in FACTS]
    questions.write_text("".join(json.dumps(q) + "\n" for q in rows))
    return {"index": str(tmp_path / "index"), "questions": str(questions), "model": str(tiny_lm_dir), "tmp": tmp_path}


def _config(setup: dict, out: str, **changes) -> CompareConfig:
    base = dict(index=setup["index"], questions=setup["questions"], out=str(setup["tmp"] / out),
                arms=("base", "rag"), model=setup["model"], max_new_tokens=6, k=2, batch_size=3)
    return CompareConfig(**{**base, **changes})


def _predictions(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in rows]


def _results_without_timings(run: Path) -> dict:
    results = json.loads((run / "results.json").read_text())
    timed = ("_ms", "per_s", "cost_per_1k", "peak_memory")  # measured time and memory, not the answers' quality
    return {arm: {k: v for k, v in r["metrics"].items() if not any(t in k for t in timed)}
            for arm, r in results["arms"].items()}


def test_ray_predictions_equal_the_single_process_run(setup):
    from ragtune.distributed.ray_compare import RayAnswerExecutor

    plain = run_compare(_config(setup, "plain"))
    distributed = run_compare(_config(setup, "ray"), executor=RayAnswerExecutor(workers=2))
    assert _predictions(distributed) == _predictions(plain)
    assert len(_predictions(plain)) == 2 * 2 * len(FACTS)
    assert any(row["answer"] for row in _predictions(plain))  # the tiny LM says something: a real comparison
    assert _results_without_timings(distributed) == _results_without_timings(plain)
    assert (distributed / "report.html").stat().st_size > 10_000


def fail_rag_shards(shard) -> None:
    if shard.arm == "rag" and shard.examples[0].qid == "library1":
        raise RuntimeError("simulated worker failure")


def test_a_shard_that_keeps_failing_is_reported_and_resume_finishes_the_run(setup):
    from ragtune.distributed.ray_compare import RayAnswerExecutor

    with pytest.raises(BackendError, match=r"1 of \d+ shard\(s\) failed after 2 attempt\(s\).*arm rag, questions "
                                           r"library1\.\.tower1: RuntimeError: simulated worker failure"):
        run_compare(_config(setup, "ray"), executor=RayAnswerExecutor(workers=2, max_attempts=2,
                                                                      before_shard=fail_rag_shards))
    partial = setup["tmp"] / "ray.partial" / "predictions.partial.jsonl"
    saved = [json.loads(line) for line in partial.read_text().splitlines()]
    assert len(saved) == 2 * 2 * len(FACTS) - 3  # every other shard's rows were kept
    assert not any(r["arm"] == "rag" and r["qid"] == "kitchen1" for r in saved)

    resumed = run_compare(_config(setup, "ray", resume=True), executor=RayAnswerExecutor(workers=2))
    assert _predictions(resumed) == _predictions(run_compare(_config(setup, "plain")))


def exit_once(shard) -> None:
    marker = Path(os.environ["RAGTUNE_CACHE_DIR"]).parent / "died-once"
    if shard.arm == "rag" and not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)  # the worker process dies mid-shard


def test_a_worker_that_dies_is_replaced_and_its_shard_retried(setup):
    from ragtune.distributed.ray_compare import RayAnswerExecutor

    run = run_compare(_config(setup, "ray"), executor=RayAnswerExecutor(workers=2, before_shard=exit_once))
    assert (setup["tmp"] / "died-once").exists()
    assert _predictions(run) == _predictions(run_compare(_config(setup, "plain")))
