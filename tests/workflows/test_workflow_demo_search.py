"""`ragtune demo --search`: opt-in (the default demo runs one comparison, unchanged), then `compare --search` of the
rag and raft arms on the demo's questions, and the searched vs default figures it prints (tiny random LM; seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.workflows import demo
from ragtune.workflows.compare import CompareConfig

pytest.importorskip("optuna")
from test_workflow_tune import DOCS, QUESTIONS  # six documents, eight questions about four of them


@pytest.fixture()
def demo_without_models(tmp_path: Path, monkeypatch) -> list:
    """run_demo with the index, adapters and comparison stubbed: the CompareConfigs it runs, in order."""
    monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(demo, "build_demo_index", lambda work: object())
    monkeypatch.setattr(demo, "demo_adapters", lambda *a, **k: {"sft": "adapters/sft", "raft": "adapters/raft"})
    runs: list[CompareConfig] = []

    def compare(config):
        runs.append(config)
        Path(config.out).mkdir(parents=True, exist_ok=True)
        return Path(config.out)

    monkeypatch.setattr("ragtune.workflows.compare.run_compare", compare)
    return runs


def test_the_default_demo_runs_one_comparison_without_a_search(demo_without_models, tmp_path: Path):
    run = demo.run_demo(tmp_path / "run")
    [config] = demo_without_models
    assert config.search is None and config.arms == demo.ARMS and config.freshness and run == tmp_path / "run"


def test_demo_search_follows_the_comparison_with_a_search_of_rag_and_raft(demo_without_models, tmp_path: Path):
    demo.run_demo(tmp_path / "run", search=4)
    main, searched = demo_without_models
    assert main.search is None and main.arms == demo.ARMS  # the comparison itself is the default demo's
    assert searched.search == 4 and searched.arms == ("rag", "raft") and searched.freshness is None
    assert searched.out == str(tmp_path / "run" / "search") and searched.raft_adapter == "adapters/raft"
    assert searched.model_copy(update={"arms": main.arms, "search": None, "freshness": main.freshness,
                                       "out": main.out}) == main  # every other setting as the demo's


def test_search_demo_reports_the_searched_and_default_test_figures(corpus, tmp_path: Path):
    setup = corpus(DOCS, QUESTIONS)
    config = CompareConfig(index=setup["index"], questions=setup["questions"], out=str(tmp_path / "run"),
                           arms=("base", "rag"), model=setup["model"], max_new_tokens=4, k=2, overwrite=True)
    run = demo.search_demo(config, 2, tmp_path / "run" / "search", arms=("rag",))
    results = json.loads((run / "results.json").read_text())
    [gain] = demo.search_gains(run)
    found = results["search"]["arms"]["rag"]
    assert list(results["arms"]) == ["rag"] and gain["arm"] == "rag" and gain["trials"] == 2
    assert gain["searched_f1"] == results["arms"]["rag"]["metrics"]["f1"] == found["test"]["f1"]
    assert gain["default_f1"] == found["default_test"]["f1"] and gain["params"] == found["params"]
    assert gain["test_questions"] + gain["validation_questions"] == len(QUESTIONS)
    versus = found["versus_defaults"]  # why the settings changed or stayed, worded as in the report
    if versus is None:  # the defaults were the best trial: nothing to explain
        assert gain["why"] == ""
    else:
        wording = f"Trial {versus['trial']} replaced" if versus["switched"] else "The defaults were kept"
        assert gain["why"].startswith(wording)
    assert (run / "search" / "rag" / "trials.jsonl").is_file()  # the same files as `compare --search`
