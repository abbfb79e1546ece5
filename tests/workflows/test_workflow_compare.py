"""`ragtune compare` end to end on a tiny corpus with a tiny random LM and the hashing embedder (seconds)."""

from __future__ import annotations

import json

import pytest

from ragtune.errors import ConfigError, InputError
from ragtune.workflows.compare import CompareConfig, run_compare
from ragtune.index import Index
from ragtune.types import Document

DOCS = [
    Document("harbour.md", "The harbour master is Ilse Varga. The harbour opened in 1952.", "Harbour"),
    Document("library.md", "The library holds 4,200 charts. It is run by Tomas Brede.", "Library"),
    Document("kitchen.md", "The kitchen serves soup on Tuesdays. The chef is Anwen Lark.", "Kitchen"),
]
QUESTIONS = [
    {"id": "a", "question": "Who is the harbour master?", "answer": "Ilse Varga", "doc_id": "harbour.md"},
    {"id": "b", "question": "How many charts does the library hold?", "answer": "4,200", "doc_id": "library.md"},
    {"id": "c", "question": "Who is the chef?", "answer": "Anwen Lark", "doc_id": "kitchen.md"},
]


@pytest.fixture()
def setup(corpus) -> dict:
    return corpus(DOCS, QUESTIONS)


def _config(setup: dict, **changes) -> CompareConfig:
    base = dict(index=setup["index"], questions=setup["questions"], out=str(setup["tmp"] / "run"),
                arms=("base", "rag"), model=setup["model"], max_new_tokens=4, k=2)
    return CompareConfig(**{**base, **changes})


def test_compare_writes_a_complete_run(setup):
    run = run_compare(_config(setup))
    results = json.loads((run / "results.json").read_text())
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert set(results["arms"]) == {"base", "rag"}
    assert len(rows) == 2 * len(QUESTIONS)
    assert {r["arm"] for r in rows} == {"base", "rag"}
    # retrieval only in the rag arm, and the hashing embedder + BM25 find the gold doc for these questions
    assert all(not r["citations"] for r in rows if r["arm"] == "base")
    assert results["arms"]["rag"]["metrics"]["retrieval_recall_at_k"] == pytest.approx(1.0)
    assert (run / "report.html").stat().st_size > 10_000
    assert not (setup["tmp"] / "run.partial").exists()
    assert results["recommendation"]["arm"] in {"base", "rag"}


def test_compare_results_json_keeps_its_layout_and_round_trips(setup):
    """score_run returns typed RunResults; the file compare writes keeps the layout it had as a free dict."""
    from results_layout import assert_golden_layout

    from ragtune.evaluate.results import RunResults

    run = run_compare(_config(setup))
    text = (run / "results.json").read_text(encoding="utf-8")
    assert_golden_layout(json.loads(text), ["base", "rag"], freshness=False)
    assert RunResults.from_json(text).to_json() == text


def test_bad_inputs_fail_before_any_work(setup):
    with pytest.raises(ConfigError, match="need a sft adapter"):
        run_compare(_config(setup, arms=("ft",)))
    bad = setup["tmp"] / "bad.jsonl"
    bad.write_text('{"question": "x?", "answer": "y", "doc_id": "nope.md"}\n')
    with pytest.raises(InputError, match="not in the index"):
        run_compare(_config(setup, questions=str(bad)))
    broken = setup["tmp"] / "broken.jsonl"
    broken.write_text('{"question": "x?", "answer": "y"}\n{not json\n')
    with pytest.raises(InputError, match="malformed"):
        run_compare(_config(setup, questions=str(broken)))
    assert not (setup["tmp"] / "run").exists()


def test_existing_run_is_kept_unless_overwrite(setup):
    run = run_compare(_config(setup))
    before = (run / "results.json").read_text()
    with pytest.raises(ConfigError, match="already exists"):
        run_compare(_config(setup))
    assert (run / "results.json").read_text() == before


def test_resume_reuses_finished_rows(setup, monkeypatch):
    calls = {"n": 0}
    real_answer = __import__("ragtune.pipeline", fromlist=["answer_from_hits"]).answer_from_hits

    def crashing_answer(questions, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")
        return real_answer(questions, *args, **kwargs)

    monkeypatch.setattr("ragtune.pipeline.answer_from_hits", crashing_answer)  # the one answer path
    with pytest.raises(RuntimeError):
        run_compare(_config(setup, batch_size=8))
    partial = setup["tmp"] / "run.partial" / "predictions.partial.jsonl"
    assert len(partial.read_text().splitlines()) == len(QUESTIONS)  # the base arm's batch survived
    calls["n"] = 10
    run = run_compare(_config(setup, batch_size=8, resume=True))
    assert calls["n"] == 11  # only the rag arm was answered again
    rows = (run / "predictions.jsonl").read_text().splitlines()
    assert len(rows) == 2 * len(QUESTIONS)


def test_freshness_updates_a_copy_of_the_index(setup):
    updates = setup["tmp"] / "updates"
    (updates / "docs").mkdir(parents=True)
    (updates / "docs" / "harbour.md").write_text("The harbour master is Petra Solm. The harbour opened in 1952.")
    (updates / "questions.jsonl").write_text(json.dumps(
        {"id": "f1", "question": "Who is the harbour master?", "answer": "Petra Solm", "doc_id": "harbour.md"}) + "\n")
    run = run_compare(_config(setup, freshness=str(updates)))
    results = json.loads((run / "results.json").read_text())
    assert results["freshness"]["n"] == 1
    fresh = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines() if '"freshness": true' in x]
    rag = [r for r in fresh if r["arm"] == "rag"][0]
    assert any("Petra Solm" in c["text"] for c in rag["citations"])
    # the user's own index is untouched
    texts = " ".join(c.text for c in Index.open(setup["index"]).chunks())
    assert "Ilse Varga" in texts and "Petra Solm" not in texts


def test_compare_trains_the_missing_adapters_through_build_training_set(setup):
    run = run_compare(_config(setup, arms=("ft", "raft"), train=True, train_data=setup["questions"], train_epochs=1))
    results = json.loads((run / "results.json").read_text())
    training = results["setup"]["training"]
    assert sorted(training) == ["raft", "sft"]
    assert training["sft"]["examples"] == 3 and training["raft"]["examples"] == 3
    assert training["sft"]["epochs"] == 1 and training["raft"]["epochs"] == 1
    for arm, kind in (("ft", "sft"), ("raft", "raft")):
        assert results["setup"]["arms"][arm]["adapter"] == training[kind]["path"]
        assert (run / "adapters" / kind / "ragtune_adapter.json").is_file()
    sft_rows = [json.loads(line) for line in (run / "adapters" / "sft_train.jsonl").read_text().splitlines()]
    assert sft_rows[0]["messages"][-1]["content"] == "Ilse Varga"  # closed-book SFT target: the bare answer


def test_compare_keeps_loaded_only_the_models_later_arms_use(setup, monkeypatch):
    """Arms answer one after another: a model no later arm uses is released before the next one loads (issue
    15: the demo held its base, SFT and RAFT models at once)."""
    from ragtune.generate import registry
    from ragtune.workflows import compare

    loaded_before = []
    real = compare.load_generator

    def spy(config):
        loaded_before.append((str(config.adapter), sorted(str(c.adapter) for c in registry._CACHE)))
        return real(config)

    monkeypatch.setattr(compare, "load_generator", spy)
    registry.clear_generator_cache()
    run_compare(_config(setup, arms=("base", "ft", "rag", "raft"), train=True, train_data=setup["questions"],
                        train_epochs=1))
    base, ft, rag, raft = loaded_before
    assert base[1] == [] and ft[1] == ["None"]  # base's model stays: rag uses it after ft
    assert rag == ("None", ["None"])  # ft's model released: no later arm uses it
    assert raft[0].endswith("raft") and raft[1] == []  # base's released once rag, its last arm, is done
    registry.clear_generator_cache()


def test_unknown_retrieval_mode_fails_before_any_work(setup):
    """Modes are registered names now (not a Literal), so compare checks the name before training or answering."""
    with pytest.raises(ConfigError, match="unknown retrieval mode 'nope'"):
        run_compare(_config(setup, mode="nope", arms=("base", "rag", "ft")))
    assert not (setup["tmp"] / "run").exists()
