"""A settings search's trials on Ray: a grid chooses what the serial search chooses, with the same figures; a trial
that keeps failing is recorded as failed and `--resume` runs it; a worker that dies is replaced and its trial
retried; `compare --search` with its trials on Ray reports what the serial run reports."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from ragtune.config import EmbedConfig, IndexConfig
from ragtune.generate import registry
from ragtune.index import Index
from ragtune.ingest import load_documents
from ragtune.types import Document, Generation
from ragtune.workflows import search_space
from ragtune.workflows.search_space import Param, SearchSpace

pytest.importorskip("optuna")
pytestmark = pytest.mark.slow  # a Ray instance and workers that load a (tiny) model: seconds each

from test_ray_compare import FACTS  # one-sentence documents and their questions

# A file long enough that 24-token chunks cut it (the FACTS documents stay one chunk at either size).
TOWN = ("The town hall clock was wound by Berit Sand every Sunday.\nIts bell weighs 900 kilograms.\n"
        "The square in front of it holds a market on Fridays.\nThe mayor is Jonas Wilde, elected in 2019.\n"
        "Visitors may climb the hall's tower from nine until five.\n")
QUESTIONS = [{"id": name, "question": q, "answer": a, "doc_id": f"{name}.md"} for name, _, q, a in FACTS] + [
    {"id": "t1", "question": "Who is the mayor?", "answer": "Jonas Wilde", "doc_id": "town.md"},
    {"id": "t2", "question": "How much does the bell weigh?", "answer": "900 kilograms", "doc_id": "town.md"},
]
# 8 configurations: the index's own chunk size and a re-chunked one (built on the driver, opened by the workers)
GRID = SearchSpace((Param("chunk_tokens", (200, 24), ""), Param("mode", ("hybrid", "bm25"), ""),
                    Param("k", (1, 2), "")))


class QuoteGenerator:
    """Answers with the last two words of the lowest-ranked passage: deterministic, and better with some retrieval settings
    than others (the tiny random LM's answers all score 0, so every configuration would tie)."""

    model_id = "quote"

    def generate(self, batch, max_new_tokens=64):
        worst = [([line for line in m[-1]["content"].splitlines() if re.match(r"\[\d+\] ", line)] or [""])[0]
                 for m in batch]  # sources are listed best last: the first is the k-th hit
        return [Generation(text=" ".join(re.findall(r"[\w,]+", line)[-2:])) for line in worst]


def quote_answers(params=None) -> None:
    """Every generator built in this process is a QuoteGenerator (run on each worker before its trials)."""
    registry._build = lambda config: QuoteGenerator()


MEASURED = ("latency_ms_p50", "latency_ms_p95", "latency_ms_mean", "cost_per_1k")  # time, not what was answered


@pytest.fixture()
def setup(tmp_path: Path, tiny_lm_dir: Path, monkeypatch, ray_local) -> dict:
    ray_local.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the failure hooks below, on workers
    monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "_build", lambda config: QuoteGenerator())
    registry.clear_generator_cache()
    monkeypatch.setitem(search_space.SEARCH_SPACES, "rag", GRID)
    monkeypatch.chdir(tmp_path)
    Path("docs").mkdir()
    Path("docs/town.md").write_text(TOWN)
    index = Index.create(tmp_path / "index", IndexConfig(embed=EmbedConfig(model="hash:64")))
    index.add_documents([*(Document(f"{name}.md", text, name.title()) for name, text, _, _ in FACTS),
                         *load_documents(["docs"]).documents])
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return {"index": str(tmp_path / "index"), "questions": str(questions), "model": str(tiny_lm_dir), "tmp": tmp_path}


def _tune(setup: dict, out: str, **changes):
    from ragtune.workflows.tune import TuneConfig

    base = dict(index=setup["index"], questions=setup["questions"], out=str(setup["tmp"] / out), arm="rag",
                trials=8, model=setup["model"], max_new_tokens=4, k=2, batch_size=2, validation_share=0.5)
    return TuneConfig(**{**base, **changes})


def _trials(out: Path) -> dict[int, dict]:
    """trials.jsonl by trial number (the last row of a number: a resumed run's), without measured time (nor the
    per-batch figures that only Ray records when nothing is pruned)."""
    rows = {}
    for line in (out / "trials.jsonl").read_text().splitlines():
        row = json.loads(line)
        row["validation"] = {k: v for k, v in row["validation"].items() if k not in MEASURED}
        rows[row["trial"]] = {k: v for k, v in row.items() if k not in ("seconds", "intermediate")}
    return rows


def _best(out: Path) -> dict:
    best = json.loads((out / "best.json").read_text())
    return {"params": best["params"], "trial": best["trial"], "f1": best["validation"]["f1"],
            "exact_match": best["validation"]["exact_match"], "trials": best["trials"], "sampler": best["sampler"]}


def test_a_grid_on_ray_chooses_what_the_serial_search_chooses(setup):
    from ragtune.distributed.ray_trials import RayTrials
    from ragtune.workflows.tune import run_tune

    serial = run_tune(_tune(setup, "serial"))
    parallel = run_tune(_tune(setup, "ray"), trials_on=RayTrials(workers=2, before_trial=quote_answers))
    assert serial.sampler == parallel.sampler == "grid" and len(parallel.trials) == 8
    assert _best(setup["tmp"] / "ray") == _best(setup["tmp"] / "serial")
    assert _trials(setup["tmp"] / "ray") == _trials(setup["tmp"] / "serial")  # each number: same params, figures
    assert {t.params["chunk_tokens"] for t in parallel.trials} == {200, 24}
    assert len({t.metrics.f1 for t in serial.trials}) > 1  # the settings matter: a real choice
    assert all(t.intermediate for t in parallel.trials)  # per-batch figures recorded, never pruned


def fail_bm25_k1(params) -> None:
    quote_answers()
    if params["mode"] == "bm25" and params["k"] == 1 and params["chunk_tokens"] == 200:
        raise RuntimeError("simulated trial failure")


def test_a_trial_that_keeps_failing_is_recorded_failed_and_resume_runs_it(setup):
    from ragtune.distributed.ray_trials import RayTrials
    from ragtune.workflows.tune import run_tune

    first = run_tune(_tune(setup, "ray"), trials_on=RayTrials(workers=2, max_attempts=2, before_trial=fail_bm25_k1))
    failed = [t for t in first.trials if t.failed]
    assert len(first.trials) == 8 and len(failed) == 1 and not failed[0].feasible
    assert "RuntimeError: simulated trial failure (after 2 attempt(s) on Ray)" in failed[0].failed
    assert first.best.params != failed[0].params
    assert json.loads((setup["tmp"] / "ray" / "best.json").read_text())["failed_trials"] == 1
    resumed = run_tune(_tune(setup, "ray", resume=True), trials_on=RayTrials(workers=2, before_trial=quote_answers))
    rows = (setup["tmp"] / "ray" / "trials.jsonl").read_text().splitlines()
    assert len(rows) == 9  # only the failed configuration ran again
    assert not any(t.failed for t in resumed.trials)
    run_tune(_tune(setup, "serial"))
    assert _best(setup["tmp"] / "ray") == _best(setup["tmp"] / "serial")


def exit_once(params) -> None:
    quote_answers()
    marker = Path(os.environ["RAGTUNE_CACHE_DIR"]).parent / "died-once"
    if params["mode"] == "bm25" and not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)  # the worker process dies mid-trial


def test_a_worker_that_dies_is_replaced_and_its_trial_retried(setup):
    from ragtune.distributed.ray_trials import RayTrials
    from ragtune.workflows.tune import run_tune

    result = run_tune(_tune(setup, "ray"), trials_on=RayTrials(workers=2, before_trial=exit_once))
    assert (setup["tmp"] / "died-once").exists()
    assert not any(t.failed for t in result.trials) and len(result.trials) == 8
    run_tune(_tune(setup, "serial"))
    assert _trials(setup["tmp"] / "ray") == _trials(setup["tmp"] / "serial")


def test_compare_search_with_trials_on_ray_reports_what_the_serial_run_reports(setup):
    from ragtune.distributed.ray_trials import RayTrials
    from ragtune.workflows.compare import CompareConfig, run_compare

    def config(out: str) -> CompareConfig:
        return CompareConfig(index=setup["index"], questions=setup["questions"], out=str(setup["tmp"] / out),
                             arms=("base", "rag"), model=setup["model"], max_new_tokens=4, k=2, batch_size=2,
                             search=8, validation_share=0.5)

    serial = json.loads((run_compare(config("plain")) / "results.json").read_text())["search"]["arms"]
    run = run_compare(config("ray"), trials_on=RayTrials(workers=2, before_trial=quote_answers))
    parallel = json.loads((run / "results.json").read_text())["search"]["arms"]
    for arm in ("base", "rag"):
        assert parallel[arm]["params"] == serial[arm]["params"] and parallel[arm]["trial"] == serial[arm]["trial"]
        assert parallel[arm]["test"]["f1"] == serial[arm]["test"]["f1"]
        assert parallel[arm]["validation"]["f1"] == serial[arm]["validation"]["f1"]
