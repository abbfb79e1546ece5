"""`ragtune tune` and `compare --search` end to end with a tiny random LM and the hashing embedder (seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.errors import ConfigError, InputError
from ragtune.types import Document
from ragtune.workflows.compare import CompareConfig, run_compare
from ragtune.workflows.tune import TuneConfig, run_tune

pytest.importorskip("optuna")

DOCS = [
    Document("harbour.md", "The harbour master is Ilse Varga. The harbour opened in 1952.", "Harbour"),
    Document("library.md", "The library holds 4,200 charts. It is run by Tomas Brede.", "Library"),
    Document("kitchen.md", "The kitchen serves soup on Tuesdays. The chef is Anwen Lark.", "Kitchen"),
    Document("garden.md", "The garden has 12 apple trees. The gardener is Oona Pell.", "Garden"),
    # no question is about these two: `--validation synth` draws its questions from them
    Document("mill.md", "The mill was built in 1871 by Piet Olde. The mill grinds 300 sacks of flour a week.", "Mill"),
    Document("school.md", "The school has 240 pupils. The headmistress is Rosa Teal.", "School"),
]
QUESTIONS = [
    {"id": "a1", "question": "Who is the harbour master?", "answer": "Ilse Varga", "doc_id": "harbour.md"},
    {"id": "a2", "question": "When did the harbour open?", "answer": "1952", "doc_id": "harbour.md"},
    {"id": "b1", "question": "How many charts does the library hold?", "answer": "4,200", "doc_id": "library.md"},
    {"id": "b2", "question": "Who runs the library?", "answer": "Tomas Brede", "doc_id": "library.md"},
    {"id": "c1", "question": "Who is the chef?", "answer": "Anwen Lark", "doc_id": "kitchen.md"},
    {"id": "c2", "question": "When is soup served?", "answer": "Tuesdays", "doc_id": "kitchen.md"},
    {"id": "d1", "question": "How many apple trees are there?", "answer": "12", "doc_id": "garden.md"},
    {"id": "d2", "question": "Who is the gardener?", "answer": "Oona Pell", "doc_id": "garden.md"},
]
DOC_OF = {q["id"]: q["doc_id"] for q in QUESTIONS}


@pytest.fixture()
def setup(corpus) -> dict:
    return corpus(DOCS, QUESTIONS)


def _tune(setup: dict, **changes) -> TuneConfig:
    base = dict(index=setup["index"], questions=setup["questions"], out=str(setup["tmp"] / "tune"), arm="rag",
                trials=3, model=setup["model"], max_new_tokens=4, k=2)
    return TuneConfig(**{**base, **changes})


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_tune_writes_split_trials_and_best(setup):
    result = run_tune(_tune(setup))
    out = setup["tmp"] / "tune"
    split = json.loads((out / "split.json").read_text())
    assert sorted(split["validation"] + split["test"]) == sorted(DOC_OF)
    assert not {DOC_OF[q] for q in split["validation"]} & {DOC_OF[q] for q in split["test"]}  # by document
    trials = _lines(out / "trials.jsonl")
    assert len(trials) == 3 and result.sampler == "coordinate+tpe"
    assert trials[0]["params"] == {"chunk_tokens": 200, "mode": "hybrid", "k": 2, "context_sentences": 3,
                                   "answer_form": "free", "answer_pick": "joint", "prompt_style": "guided", "max_new_tokens": 4}  # the arm's defaults come first
    assert all(t["validation"]["n"] == len(split["validation"]) and t["feasible"] for t in trials)
    best = json.loads((out / "best.json").read_text())
    assert best["params"] in [t["params"] for t in trials]
    assert best["validation"]["f1"] == max(t["validation"]["f1"] for t in trials)
    assert best["space"]["mode"] == ["hybrid", "hybrid-convex", "dense", "bm25"] and best["space"]["k"] == [2, 3, 5]
    assert json.loads((out / "config.json").read_text())["trials"] == 3


def test_tune_without_questions_searches_on_synthesised_ones(setup):
    result = run_tune(_tune(setup, questions=None, validation_questions=6))
    out = setup["tmp"] / "tune"
    split = json.loads((out / "split.json").read_text())
    assert split["validation_source"] == "synth" and split["test"] == []
    assert split["synth"]["method"] == "rules" and split["synth"]["documents_excluded"] == 0
    synthesised = _lines(out / "validation.jsonl")
    assert [q["id"] for q in synthesised] == split["validation"] and 1 <= len(synthesised) <= 6
    assert all(q["answer"].lower() in q["context"].lower() for q in synthesised)
    assert all(t["validation"]["n"] == len(synthesised) for t in _lines(out / "trials.jsonl"))
    assert len(result.trials) == 3
    assert json.loads((out / "config.json").read_text())["questions"] is None
    # the synthesis is seeded: a resumed search finds the same validation questions and adds one trial
    resumed = run_tune(_tune(setup, questions=None, validation_questions=6, trials=4, resume=True))
    assert len(resumed.trials) == 4 and json.loads((out / "split.json").read_text()) == split
    with pytest.raises(ConfigError, match="split.json"):
        run_tune(_tune(setup, questions=None, validation_questions=5, trials=4, resume=True))


def test_tune_synth_with_questions_keeps_their_documents_out_of_validation(setup):
    run_tune(_tune(setup, validation="synth"))
    out = setup["tmp"] / "tune"
    split = json.loads((out / "split.json").read_text())
    assert split["validation_source"] == "synth" and sorted(split["test"]) == sorted(DOC_OF)
    assert {q["doc_id"] for q in _lines(out / "validation.jsonl")} <= {"mill.md", "school.md"}
    assert split["synth"]["documents_excluded"] == 4 and split["synth"]["asked"] == 10  # the minimum
    with pytest.raises(ConfigError, match="--validation split divides your questions"):
        run_tune(_tune(setup, questions=None, validation="split", out=str(setup["tmp"] / "other")))


def test_tune_prices_trials_with_its_cost_model_and_applies_the_cost_limit(setup):
    from ragtune.evaluate.cost import CostModel

    run_tune(_tune(setup, trials=2, max_cost_per_1k=1e6, cost=CostModel(cpu_hour_usd=7.2)))
    best = json.loads((setup["tmp"] / "tune" / "best.json").read_text())
    assert best["max_cost_per_1k"] == 1e6
    validation = best["validation"]  # 1000 queries of the mean latency, at $7.20 an hour
    assert validation["cost_per_1k"] == pytest.approx(validation["latency_ms_mean"] / 3600 * 7.2)
    with pytest.raises(InputError, match="no configuration of arm 'rag' meets --max-cost-per-1k 1e-12"):
        run_tune(_tune(setup, trials=2, max_cost_per_1k=1e-12, out=str(setup["tmp"] / "strict")))
    assert all(not t["feasible"] for t in _lines(setup["tmp"] / "strict" / "trials.jsonl"))


def test_tune_rejects_an_unknown_arm_before_any_work(setup):
    with pytest.raises(InputError, match="unknown arm 'nope'"):
        run_tune(_tune(setup, arm="nope"))
    assert not (setup["tmp"] / "tune").exists()


def test_tune_resume_answers_only_new_settings(setup, monkeypatch):
    run_tune(_tune(setup, trials=2))
    calls = []
    real = __import__("ragtune.evaluate.harness", fromlist=["run_arm"]).run_arm

    def counting(arm, examples, *args, **kwargs):
        calls.append(arm)
        return real(arm, examples, *args, **kwargs)

    monkeypatch.setattr("ragtune.workflows.answer_trials.run_arm", counting)
    with pytest.raises(ConfigError, match="already holds a search"):
        run_tune(_tune(setup, trials=3))
    result = run_tune(_tune(setup, trials=3, resume=True))
    assert len(calls) == 1 and len(result.trials) == 3
    assert len(_lines(setup["tmp"] / "tune" / "trials.jsonl")) == 3
    with pytest.raises(ConfigError, match="split.json"):
        run_tune(_tune(setup, trials=3, resume=True, seed=5))


def test_tune_with_too_few_documents_fails_before_any_model_loads(setup):
    one_doc = setup["tmp"] / "one.jsonl"
    one_doc.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS[:2]))
    with pytest.raises(InputError, match="cannot split 2 question"):
        run_tune(_tune(setup, questions=str(one_doc)))


def test_compare_search_reports_only_the_test_split(setup):
    config = CompareConfig(index=setup["index"], questions=setup["questions"], out=str(setup["tmp"] / "run"),
                           arms=("base", "rag"), model=setup["model"], max_new_tokens=4, k=2, search=2)
    run = run_compare(config)
    split = json.loads((run / "search" / "split.json").read_text())
    test_ids = set(split["test"])
    rows = _lines(run / "predictions.jsonl")
    assert {r["qid"] for r in rows} == test_ids and len(rows) == 2 * len(test_ids)  # never a validation question
    results = json.loads((run / "results.json").read_text())
    assert results["setup"]["questions"] == len(test_ids)
    assert all(results["arms"][a]["n"] == len(test_ids) for a in ("base", "rag"))
    search = results["search"]
    assert search["validation_questions"] == len(split["validation"]) and search["test_questions"] == len(test_ids)
    for arm in ("base", "rag"):
        trials = _lines(run / "search" / arm / "trials.jsonl")
        best = json.loads((run / "search" / arm / "best.json").read_text())
        assert len(trials) == 2 and all(t["validation"]["n"] == len(split["validation"]) for t in trials)
        info = search["arms"][arm]
        assert info["params"] == best["params"] and info["trials"] == 2
        assert info["test"]["f1"] == pytest.approx(results["arms"][arm]["metrics"]["f1"])  # the winner's test figure
        assert info["gain_f1"] == pytest.approx(info["test"]["f1"] - info["default_test"]["f1"])
        versus = info["test_versus_defaults"]  # the winner vs the defaults on the test questions, paired
        if info["params"] == info["default_params"]:
            assert versus is None
        else:
            assert versus["n"] == len(test_ids) and versus["delta_f1"] == pytest.approx(info["gain_f1"], abs=1e-4)
        assert results["setup"]["arms"][arm]["searched"] == best["params"]
        points = info["trial_results"]  # what the report plots: every trial's validation F1 and p95
        assert [(p["trial"], p["params"], p["f1"]) for p in points] == [
            (t["trial"], t["params"], t["validation"]["f1"]) for t in trials]
        assert info["default_trial"] == 0 and info["test"]["cost_per_1k"] == results["arms"][arm]["metrics"][
            "cost_per_1k_queries"]
    assert set(search["arms"]["base"]["params"]) == {"prompt_style", "max_new_tokens"}
    html = (run / "report.html").read_text()
    assert 'id="search"' in html and "Settings searched on a validation split" in html
    assert 'id="fig-search_base"' in html and 'id="fig-search_rag"' in html
    gained = [r for r in results["recommendation"]["reasons"] if "gain from tuning" in r]
    assert len(gained) == 1 and "base " in gained[0] and "rag " in gained[0]


def test_compare_search_on_synthesised_validation_tests_every_question(setup):
    config = CompareConfig(index=setup["index"], questions=setup["questions"], out=str(setup["tmp"] / "run"),
                           arms=("rag",), model=setup["model"], max_new_tokens=4, k=2, search=2,
                           validation="synth", validation_questions=4)
    run = run_compare(config)
    split = json.loads((run / "search" / "split.json").read_text())
    assert split["validation_source"] == "synth" and sorted(split["test"]) == sorted(DOC_OF)
    validation = _lines(run / "search" / "validation.jsonl")
    assert {q["doc_id"] for q in validation} <= {"mill.md", "school.md"} and len(validation) == len(split["validation"])
    assert {r["qid"] for r in _lines(run / "predictions.jsonl")} == set(DOC_OF)  # all the user's questions
    results = json.loads((run / "results.json").read_text())
    assert results["search"]["validation_source"] == "synth"
    assert results["search"]["validation_questions"] == len(validation) <= 4
    assert results["search"]["test_questions"] == len(QUESTIONS)


def test_compare_synth_without_a_free_document_fails_before_any_model_loads(setup):
    only_gold = setup["tmp"] / "gold.jsonl"
    extra = [{"id": "m1", "question": "When was the mill built?", "answer": "1871", "doc_id": "mill.md"},
             {"id": "s1", "question": "How many pupils?", "answer": "240", "doc_id": "school.md"}]
    only_gold.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS + extra))
    config = CompareConfig(index=setup["index"], questions=str(only_gold), out=str(setup["tmp"] / "run"),
                           arms=("rag",), model="/nonexistent-model", search=2, validation="synth")
    with pytest.raises(InputError, match="cannot synthesise validation questions"):
        run_compare(config)
    assert not (setup["tmp"] / "run.partial").exists()


def test_compare_without_search_has_no_search_section(setup):
    run = run_compare(CompareConfig(index=setup["index"], questions=setup["questions"], out=str(setup["tmp"] / "run"),
                                    arms=("base",), model=setup["model"], max_new_tokens=4, k=2))
    assert "search" not in json.loads((run / "results.json").read_text())
    assert not (run / "search").exists() and 'id="search"' not in (run / "report.html").read_text()


def test_compare_search_takes_its_ray_trials_not_an_answer_executor(setup):
    """`compare --search --ray` runs the trials on Ray (trials_on) and the test run here: an executor is refused."""
    config = CompareConfig(index=setup["index"], questions=setup["questions"], out=str(setup["tmp"] / "run"),
                           arms=("base",), model=setup["model"], search=2)
    with pytest.raises(ConfigError, match="give its trials to trials_on"):
        run_compare(config, executor=lambda *a: {})


def test_compare_search_resume_does_not_search_again(setup, monkeypatch):
    """A run killed while answering the test split resumes with the recorded trials: no validation question is
    answered again."""
    config = CompareConfig(index=setup["index"], questions=setup["questions"], out=str(setup["tmp"] / "run"),
                           arms=("rag",), model=setup["model"], max_new_tokens=4, k=2, search=2)

    def crash(*args, **kwargs):
        raise RuntimeError("killed while answering the test split")

    monkeypatch.setattr("ragtune.workflows.compare.run_arm", crash)
    with pytest.raises(RuntimeError, match="killed"):
        run_compare(config)
    partial = setup["tmp"] / "run.partial" / "search"
    validation = set(json.loads((partial / "split.json").read_text())["validation"])
    assert len(_lines(partial / "rag" / "trials.jsonl")) == 2
    monkeypatch.undo()
    answered: list[set[str]] = []
    real = __import__("ragtune.evaluate.harness", fromlist=["run_arm"]).run_arm

    def recording(arm, examples, *args, **kwargs):
        answered.append({e.qid for e in examples})
        return real(arm, examples, *args, **kwargs)

    monkeypatch.setattr("ragtune.workflows.answer_trials.run_arm", recording)
    run = run_compare(config.model_copy(update={"resume": True}))
    assert not any(qids & validation for qids in answered)
    assert len(_lines(run / "search" / "rag" / "trials.jsonl")) == 2
    assert json.loads((run / "results.json").read_text())["search"]["arms"]["rag"]["trials"] == 2


# --- training settings of a tuned arm (--train): tiny adapters train in about a second --------------------------

@pytest.fixture()
def small_training(monkeypatch) -> list:
    """Epochs 1 (the default here) or 2, lr 1e-3 (the default) or 3e-3; the list of adapters trained (epochs, lr)."""
    from ragtune.workflows import search_space, train_arms

    monkeypatch.setitem(search_space.TRAINING, "sft", (search_space.Param("epochs", (2,), ""),
                                                       search_space.Param("lr", (3e-3,), "")))
    trained, real = [], train_arms.train_adapters

    def counting(*args, **kwargs):
        trained.append((kwargs["epochs"] or 1, kwargs["settings"].get("sft", {}).get("lr", 1e-3)))
        return real(*args, **kwargs)

    monkeypatch.setattr(train_arms, "train_adapters", counting)
    monkeypatch.setattr("ragtune.workflows.compare.train_adapters", counting)  # compare --train's own
    return trained


def _pair(row: dict) -> tuple:
    return row["params"]["epochs"], row["params"]["lr"]


def test_tune_train_searches_epochs_and_lr_and_trains_each_adapter_once(setup, small_training):
    config = _tune(setup, arm="ft", train=True, train_data=setup["questions"], train_epochs=1, trials=3)
    result = run_tune(config)
    out = setup["tmp"] / "tune"
    best = json.loads((out / "best.json").read_text())
    assert best["default_params"]["epochs"] == 1 and best["default_params"]["lr"] == 1e-3
    assert best["space"]["epochs"] == [1, 2] and best["space"]["lr"] == [1e-3, 3e-3]
    training = best["training"]
    assert training["searched"] and training["kind"] == "sft" and training["budget_s"] is None
    assert (training["epochs"], training["lr"]) == _pair(best)
    assert (out / training["adapter"] / "search_adapter.json").is_file() and training["adapter"].startswith("adapters/")
    rows = _lines(out / "trials.jsonl")
    pairs = {_pair(r) for r in rows}
    assert rows[0]["params"] == best["default_params"] and rows[0]["training"]["train_s"] > 0  # trained first
    assert len(small_training) == len(pairs) == len(list((out / "adapters").iterdir()))  # each pair once
    first_use = {}
    for row in rows:  # a trial pays for training only when it is the first to answer with its adapter
        first_use.setdefault(_pair(row), row["trial"])
        assert (row["training"]["train_s"] > 0) == (first_use[_pair(row)] == row["trial"])
        assert row["training"]["adapter_train_s"] > 0 and row["training"]["reused"] == (row["training"]["train_s"] == 0)
    assert training["train_s"] == pytest.approx(sum(r["training"]["train_s"] for r in rows), abs=0.01)
    assert result.best.training["adapter"] == training["adapter"]
    # --resume: the recorded settings are not answered again and their adapters are not trained again
    before = len(small_training)
    run_tune(config.model_copy(update={"trials": 6, "resume": True}))
    rows = _lines(out / "trials.jsonl")
    assert len({json.dumps(r["params"], sort_keys=True) for r in rows}) == len(rows) > 3  # none answered twice
    assert len(small_training) - before == len({_pair(r) for r in rows} - pairs)
    assert len(list((out / "adapters").iterdir())) == len({_pair(r) for r in rows})


def test_tune_train_skips_what_the_training_budget_cannot_afford(setup, small_training):
    """A budget of 0.6 ms: the defaults' adapter is trained (the baseline), every other pair is a skipped trial."""
    result = run_tune(_tune(setup, arm="ft", train=True, train_data=setup["questions"], train_epochs=1, trials=4,
                            search_train_minutes=1e-5))
    rows = _lines(setup["tmp"] / "tune" / "trials.jsonl")
    over = [r for r in rows if _pair(r) != (1, 1e-3)]
    assert over and all("training budget" in r["skipped"] and not r["feasible"] for r in over)
    assert all("over_budget" in r["training"] for r in over)
    assert small_training == [(1, 1e-3)] and _pair(result.to_dict()) == (1, 1e-3)
    best = json.loads((setup["tmp"] / "tune" / "best.json").read_text())
    assert best["training"]["budget_s"] == pytest.approx(6e-4) and best["training"]["over_budget_trials"] == len(over)


def test_tune_with_a_given_adapter_does_not_search_its_training(setup, small_training):
    run_tune(_tune(setup, arm="ft", train=True, train_data=setup["questions"], train_epochs=1, trials=1))
    adapter = setup["tmp"] / "tune" / json.loads((setup["tmp"] / "tune" / "best.json").read_text())["training"]["adapter"]
    run_tune(_tune(setup, arm="ft", adapter=str(adapter), trials=1, out=str(setup["tmp"] / "given")))
    best = json.loads((setup["tmp"] / "given" / "best.json").read_text())
    assert "epochs" not in best["params"] and "epochs" not in best["space"]
    assert best["training"]["searched"] is False and "(--adapter)" in best["training"]["reason"]


def test_compare_search_train_answers_the_test_split_with_the_chosen_adapter(setup, small_training):
    config = CompareConfig(index=setup["index"], questions=setup["questions"], out=str(setup["tmp"] / "run"),
                           arms=("ft",), model=setup["model"], max_new_tokens=4, k=2, search=2, train=True,
                           train_data=setup["questions"], train_epochs=1)
    run = run_compare(config)
    results = json.loads((run / "results.json").read_text())
    training = results["search"]["arms"]["ft"]["training"]
    assert training["searched"] and results["setup"]["training"]["sft"]["epochs"] == 1
    # compare --train's adapter answers for the defaults: the search never trains (1, 1e-3) again
    assert (1, 1e-3) not in small_training[1:] and small_training[0] == (1, 1e-3)
    assert not list((run / "search" / "adapters").glob("sft-e1-lr0.001-*"))
    chosen = (run / "search" / training["adapter"]).resolve()
    assert Path(results["setup"]["arms"]["ft"]["adapter"]).resolve() == chosen and chosen.is_dir()
    assert results["setup"]["arms"]["ft"]["search_train_s"] == training["train_s"]


def test_answer_trials_report_the_running_figures_after_each_batch(setup):
    """What the pruner judges: after each batch but the last, the figures of the questions answered so far."""
    from ragtune.config import GenerateConfig
    from ragtune.generate import load_generator
    from ragtune.index import Index
    from ragtune.pipeline import AnswerSettings
    from ragtune.workflows.answer_trials import AnswerTrials
    from ragtune.workflows.compare_inputs import load_questions

    config = GenerateConfig(model=setup["model"], max_new_tokens=4)
    runner = AnswerTrials("rag", load_questions(setup["questions"]), load_generator(config), Index.open(setup["index"]),
                          AnswerSettings.resolve(config), k=2, mode="bm25", batch_size=3)
    running: list = []
    full = runner({"mode": "bm25", "k": 2}, running.append)
    assert [m.n for m in running] == [3, 6] and full.n == len(QUESTIONS)
    assert running[1].f1_scores == full.f1_scores[:6]
    assert running[1].f1 == pytest.approx(sum(full.f1_scores[:6]) / 6)


def test_the_search_summary_compares_winner_and_defaults_on_test_question_by_question():
    from types import SimpleNamespace

    from ragtune.types import Example
    from ragtune.workflows.search import TrialMetrics
    from ragtune.workflows.tune import ComparisonSearch

    test = [Example(question=f"q{i}?", answer="a", qid=f"q{i}") for i in range(8)]
    default = TrialMetrics(f1=0.1, exact_match=0.0, latency_ms_p50=1, latency_ms_p95=1, n=8, latency_ms_mean=1,
                           f1_scores=(0.0, 0.2, 0.0, 0.0, 0.4, 0.0, 0.2, 0.0))
    found = ComparisonSearch(SimpleNamespace(test=test), {"rag": SimpleNamespace(default_test=default)})
    per_question = {"rag": {f"q{i}": {"f1": s + 0.5} for i, s in enumerate(default.f1_scores)}}
    versus = found._test_versus("rag", per_question, seed=0)
    assert versus["delta_f1"] == 0.5 and versus["n"] == 8 and versus["p_value"] < 0.05
    assert versus["ci95"][0] == pytest.approx(0.5) and versus["ci95"][1] == pytest.approx(0.5)
    del per_question["rag"]["q3"]
    assert found._test_versus("rag", per_question, seed=0) is None  # a missing score: no comparison
    assert ComparisonSearch(SimpleNamespace(test=test), {"rag": SimpleNamespace(default_test=None)})._test_versus(
        "rag", per_question, seed=0) is None  # the defaults won: nothing to compare
