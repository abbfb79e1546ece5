"""The settings search without a model: the space as data, the split by document, Optuna's search with a fake
trial runner (constraint, resume, grid vs TPE), and the runs-database record."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from ragtune.arms import ARMS
from ragtune.errors import ConfigError, InputError
from ragtune.evaluate.cost import CostModel
from ragtune.evaluate.stats import detectable_difference
from ragtune.types import Example
from ragtune.workflows import search_space
from ragtune.workflows.search import TrialMetrics, combined_winners, read_trials, search_arm
from ragtune.workflows.search_space import Param, SearchSpace, default_params, space_for
from ragtune.workflows.validation_split import free_documents, split_by_document, synth_size, synthesize_validation

pytest.importorskip("optuna")

SPACE = SearchSpace((Param("mode", ("hybrid", "dense", "bm25"), ""), Param("k", (3, 5), "")))  # 6 configurations
DEFAULTS = {"mode": "hybrid", "k": 3}


class FakeRunner:
    """Scores a configuration from a table (F1, p95 ms) and counts the calls."""

    def __init__(self, table: dict[tuple, tuple[float, float]]):
        self.table = table
        self.calls: list[dict] = []

    def __call__(self, params) -> TrialMetrics:
        self.calls.append(dict(params))
        f1, p95 = self.table[(params["mode"], params["k"])]
        return TrialMetrics(f1=f1, exact_match=f1 / 2, latency_ms_p50=p95 / 2, latency_ms_p95=p95, n=4,
                            latency_ms_mean=p95 / 2)


TABLE = {("hybrid", 3): (0.40, 100.0), ("hybrid", 5): (0.50, 200.0), ("dense", 3): (0.30, 90.0),
         ("dense", 5): (0.35, 150.0), ("bm25", 3): (0.45, 80.0), ("bm25", 5): (0.90, 900.0)}


def _example(qid: str, doc: str | None, many: list[str] | None = None) -> Example:
    return Example(question=f"question {qid}?", answer="x", doc_id=doc or "", qid=qid,
                   metadata={"doc_ids": many} if many else {})


# --- the space, declared as data ------------------------------------------------------------------------------

def test_every_arm_has_a_space_and_closed_book_arms_search_only_answering():
    assert set(search_space.SEARCH_SPACES) == set(ARMS)
    for arm, spec in ARMS.items():
        names = space_for(arm).names
        if spec.retrieval:
            assert names == ("chunk_tokens", "mode", "k", "context_sentences", "answer_form", "answer_pick",
                             "prompt_style", "max_new_tokens")
        else:  # a closed-book arm retrieves nothing: no chunk size, mode or k to search
            assert names == ("prompt_style", "max_new_tokens")
    assert space_for("rag").size == 2 * 4 * 2 * 2 * 4 * 2 * 2 * 2 and space_for("base").size == 4
    assert space_for("rag").grid()["answer_form"] == ["free", "free-or-span", "snap", "span"]
    assert space_for("rag").grid()["chunk_tokens"] == [128, 320]


def test_the_defaults_join_the_space_when_they_are_not_in_it():
    defaults = default_params("rag", mode="hybrid", k=4, prompt_style="guided", context_sentences=3, max_new_tokens=7,
                              chunk_tokens=200)
    assert defaults == {"chunk_tokens": 200, "mode": "hybrid", "k": 4, "context_sentences": 3,
                        "answer_form": "free", "answer_pick": "joint", "prompt_style": "guided", "max_new_tokens": 7}
    widened = space_for("rag").including(defaults)
    assert widened.grid()["k"] == [4, 3, 5] and widened.grid()["max_new_tokens"] == [7, 32, 64]
    assert widened.grid()["chunk_tokens"] == [200, 128, 320]  # the index's own size is the default
    assert widened.grid()["mode"] == ["hybrid", "hybrid-convex", "dense", "bm25"]  # already there: unchanged
    with pytest.raises(ConfigError, match="lack"):
        space_for("rag").including({"mode": "bm25"})


def test_the_searched_configurations_are_the_declared_space(tmp_path: Path, monkeypatch):
    """What is declared in SEARCH_SPACES is exactly what is tried: a changed declaration changes the search."""
    monkeypatch.setitem(search_space.SEARCH_SPACES, "base", SearchSpace((Param("max_new_tokens", (8, 16, 24), ""),)))
    runner_calls: list[dict] = []

    def runner(params):
        runner_calls.append(dict(params))
        return TrialMetrics(f1=params["max_new_tokens"] / 100, exact_match=0.0, latency_ms_p50=1, latency_ms_p95=1, n=1)

    result = search_arm("base", space_for("base"), {"max_new_tokens": 16}, runner, tmp_path, budget=10)
    assert sorted(c["max_new_tokens"] for c in runner_calls) == [8, 16, 24]  # the whole (small) grid, once each
    assert result.sampler == "grid" and result.best.params == {"max_new_tokens": 24}


# --- the split by document ------------------------------------------------------------------------------------

def test_split_keeps_each_document_on_one_side_and_is_seeded():
    examples = [_example(f"q{i}", f"doc{i % 5}.md") for i in range(20)]  # 5 documents, 4 questions each
    split = split_by_document(examples, share=0.3, seed=1)
    val_docs = {e.doc_id for e in split.validation}
    test_docs = {e.doc_id for e in split.test}
    assert val_docs and test_docs and not val_docs & test_docs
    assert len(split.validation) == 8  # two whole documents: the first reaching 30% of 20
    assert len(split.validation) + len(split.test) == 20
    again = split_by_document(examples, share=0.3, seed=1)
    assert again.to_dict() == split.to_dict()
    assert split.to_dict()["validation"] == [e.qid for e in split.validation]
    other_seeds = {tuple(split_by_document(examples, share=0.3, seed=s).to_dict()["validation"]) for s in range(6)}
    assert len(other_seeds) > 1


def test_questions_sharing_any_gold_document_stay_together():
    examples = [_example("a", None, ["d1.md", "d2.md"]), _example("b", "d2.md"), _example("c", "d3.md"),
                _example("d", "d1.md"), _example("e", "d4.md"), _example("f", None)]
    for seed in range(8):
        split = split_by_document(examples, share=0.5, seed=seed)
        val = {e.qid for e in split.validation}
        assert {"a", "b", "d"} <= val or not {"a", "b", "d"} & val  # one group: never split apart
        assert split.groups == 4  # {a,b,d}, {c}, {e}, {f}


def test_too_few_questions_to_split_is_a_clear_error():
    with pytest.raises(InputError, match="at least 2 are needed"):
        split_by_document([_example("a", "d1.md"), _example("b", "d1.md")])
    with pytest.raises(InputError, match="between 0 and 1"):
        split_by_document([_example("a", "d1.md"), _example("b", "d2.md")], share=1.0)


# --- validation synthesised from the corpus -------------------------------------------------------------------

CORPUS = [
    ("harbour.md", "The harbour master is Ilse Varga. The harbour opened in 1952."),
    ("garden.md", "The garden has 12 apple trees. The gardener is Oona Pell."),
    ("mill.md", "The mill was built in 1871 by Piet Olde. The mill grinds 300 sacks of flour a week."),
    ("school.md", "The school has 240 pupils. The headmistress is Rosa Teal."),
    ("kitchen.md", "The kitchen serves soup on Tuesdays. The chef is Anwen Lark."),
]


@pytest.fixture()
def corpus_index(tmp_path: Path):
    from ragtune.config import EmbedConfig, IndexConfig
    from ragtune.index import Index
    from ragtune.types import Document

    index = Index.create(tmp_path / "index", IndexConfig(embed=EmbedConfig(model="hash:64")))
    index.add_documents([Document(doc, text, doc) for doc, text in CORPUS])
    return index


def test_synthesised_validation_never_uses_a_test_document(corpus_index):
    test = [_example("t1", "kitchen.md"), _example("t2", None, ["harbour.md", "mill.md"])]
    split = synthesize_validation(corpus_index, test, questions=10, seed=0)
    assert split.test == test  # every user question stays a test question
    docs = {e.doc_id for e in split.validation}
    assert docs and docs <= {"garden.md", "school.md"}  # kitchen, harbour and mill hold test gold
    assert [e.qid for e in split.validation] == [f"synth-{i:05d}" for i in range(len(split.validation))]
    assert all(e.answer.lower() in e.context.lower() and e.question.endswith("?") for e in split.validation)
    record = split.to_dict()
    assert record["validation_source"] == "synth" and record["test"] == ["t1", "t2"]
    assert record["synth"] == {"method": "rules", "per_chunk": 2, "asked": 10, "documents_free": 2,
                               "documents_used": len(docs), "documents_excluded": 3, "test_without_gold": 0}
    again = synthesize_validation(corpus_index, test, questions=10, seed=0)
    assert [e.question for e in again.validation] == [e.question for e in split.validation]  # seeded


def test_synthesised_validation_takes_the_size_asked_and_every_document_without_a_test(corpus_index):
    split = synthesize_validation(corpus_index, [], questions=3, seed=1)
    assert len(split.validation) == 3 and split.test == [] and split.synth["documents_excluded"] == 0
    whole = synthesize_validation(corpus_index, [], questions=100, seed=1)
    assert {e.doc_id for e in whole.validation} == {doc for doc, _ in CORPUS}  # fewer to be had than asked
    assert len({e.question for e in whole.validation}) == len(whole.validation)
    assert synth_size(70, 0.3) == 30 and synth_size(8, 0.3) == 10 and synth_size(0, 0.3) == 40
    assert synth_size(70, 0.3, requested=5) == 5


def test_synthesised_validation_spreads_over_documents(tmp_path: Path):
    """Each document yields two questions; four asked come from four documents, not two documents twice."""
    from ragtune.config import EmbedConfig, IndexConfig
    from ragtune.index import Index
    from ragtune.types import Document

    index = Index.create(tmp_path / "facts", IndexConfig(embed=EmbedConfig(model="hash:64")))
    index.add_documents([Document(f"{name}.md", f"The {name} was built in 18{i}1 by Piet Olde. The {name} keeps "
                                  f"{i + 2}00 sacks of flour. The keeper of the {name} is Rosa Teal.", name)
                         for i, name in enumerate(["mill", "barn", "forge", "tower"])])
    split = synthesize_validation(index, [], questions=4, seed=0)
    assert sorted(e.doc_id for e in split.validation) == ["barn.md", "forge.md", "mill.md", "tower.md"]
    assert split.groups == 4 and split.synth["documents_used"] == 4


def test_no_document_free_of_test_gold_is_a_clear_error(corpus_index):
    every = [_example(doc, doc) for doc, _ in CORPUS]
    with pytest.raises(InputError, match="every one of the index's 5 document"):
        free_documents(corpus_index, every)
    assert free_documents(corpus_index, every[1:]) == ["harbour.md"]


def test_a_split_of_the_questions_records_its_source():
    split = split_by_document([_example("a", "d1.md"), _example("b", "d2.md")])
    assert split.to_dict()["validation_source"] == "split" and "synth" not in split.to_dict()


# --- the search -----------------------------------------------------------------------------------------------

def test_grid_when_the_space_fits_the_budget_writes_every_trial(tmp_path: Path):
    runner = FakeRunner(TABLE)
    result = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path, budget=6)
    assert result.sampler == "grid" and len(runner.calls) == 6
    assert result.best.params == {"mode": "bm25", "k": 5}
    rows = [json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and [r["trial"] for r in rows] == list(range(6))
    assert set(rows[0]) == {"trial", "params", "validation", "seconds", "feasible"}
    assert set(rows[0]["validation"]) == {"f1", "exact_match", "latency_ms_p50", "latency_ms_p95", "latency_ms_mean",
                                          "n", "cost_per_1k", "f1_per_question"}
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["params"] == {"mode": "bm25", "k": 5} and best["validation"]["f1"] == pytest.approx(0.90)
    assert best["default_params"] == DEFAULTS and best["default_validation"]["f1"] == pytest.approx(0.40)
    assert best["space"] == {"mode": ["hybrid", "dense", "bm25"], "k": [3, 5]} and best["trials"] == 6


def test_the_latency_constraint_excludes_infeasible_trials(tmp_path: Path):
    """bm25/k=5 has the best F1 but a p95 over the limit: it is recorded, marked infeasible, never chosen."""
    runner = FakeRunner(TABLE)
    result = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path, budget=6, max_p95_ms=250)
    infeasible = [t for t in result.trials if not t.feasible]
    assert [t.params for t in infeasible] == [{"mode": "bm25", "k": 5}]
    assert result.best.params == {"mode": "hybrid", "k": 5}  # the best F1 among the feasible ones
    assert json.loads((tmp_path / "best.json").read_text())["feasible_trials"] == 5


# $36 per CPU hour: a query of mean latency m ms costs m / 100 USD per 1k queries (the mean is p95 / 2 here)
PRICEY = CostModel(cpu_hour_usd=36.0)


def test_the_cost_constraint_excludes_trials_over_it(tmp_path: Path):
    """hybrid/5 (p95 200 ms: $1.00 per 1k) and bm25/5 ($4.50) cost more than $0.80 per 1k: never chosen."""
    result = search_arm("rag", SPACE, DEFAULTS, FakeRunner(TABLE), tmp_path, budget=6, max_cost_per_1k=0.8,
                        cost_model=PRICEY)
    assert sorted((t.params["mode"], t.params["k"]) for t in result.trials if not t.feasible) == [
        ("bm25", 5), ("hybrid", 5)]
    assert result.best.params == {"mode": "bm25", "k": 3}  # F1 0.45, $0.40: the best within the budget
    costs = {(t.params["mode"], t.params["k"]): t.cost_per_1k for t in result.trials}
    assert costs[("hybrid", 3)] == pytest.approx(0.50) and costs[("bm25", 5)] == pytest.approx(4.50)
    rows = {(r["params"]["mode"], r["params"]["k"]): r for r in map(json.loads, (tmp_path / "trials.jsonl").open())}
    assert rows[("dense", 5)]["validation"]["cost_per_1k"] == pytest.approx(0.75)
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["max_cost_per_1k"] == 0.8 and best["max_p95_ms"] is None and best["feasible_trials"] == 4
    assert best["validation"]["cost_per_1k"] == pytest.approx(0.40)
    assert best["default_validation"]["cost_per_1k"] == pytest.approx(0.50)


def test_both_constraints_apply_together(tmp_path: Path):
    result = search_arm("rag", SPACE, DEFAULTS, FakeRunner(TABLE), tmp_path, budget=6, max_p95_ms=150,
                        max_cost_per_1k=0.6, cost_model=PRICEY)
    # p95 <= 150: hybrid/3, dense/3, dense/5, bm25/3; of those dense/5 costs $0.75
    assert sorted((t.params["mode"], t.params["k"]) for t in result.trials if t.feasible) == [
        ("bm25", 3), ("dense", 3), ("hybrid", 3)]
    assert result.best.params == {"mode": "bm25", "k": 3}


def test_cost_is_a_constraint_never_a_tie_breaker(tmp_path: Path):
    """Equal F1 everywhere: the defaults stay, though bm25/3 is cheaper and every trial is within the budget."""
    flat = {key: (0.5, p95) for key, (_f1, p95) in TABLE.items()}
    result = search_arm("rag", SPACE, DEFAULTS, FakeRunner(flat), tmp_path, budget=6, max_cost_per_1k=10.0,
                        cost_model=PRICEY)
    assert all(t.feasible for t in result.trials) and result.best.params == DEFAULTS


def test_no_configuration_within_the_cost_is_a_clear_error(tmp_path: Path):
    with pytest.raises(InputError, match=r"meets --max-cost-per-1k 0.01 on validation .* the cheapest \$0.400000"):
        search_arm("rag", SPACE, DEFAULTS, FakeRunner(TABLE), tmp_path, budget=6, max_cost_per_1k=0.01,
                   cost_model=PRICEY)


def test_a_resumed_search_prices_recorded_trials_with_its_own_cost_model(tmp_path: Path):
    search_arm("rag", SPACE, DEFAULTS, FakeRunner(TABLE), tmp_path, budget=6)  # no cost limit, default prices
    again = FakeRunner(TABLE)
    result = search_arm("rag", SPACE, DEFAULTS, again, tmp_path, budget=6, resume=True, max_cost_per_1k=0.8,
                        cost_model=PRICEY)
    assert again.calls == [] and result.best.params == {"mode": "bm25", "k": 3}
    assert {t.params["mode"]: t.cost_per_1k for t in result.trials if t.params["k"] == 3}["hybrid"] == pytest.approx(0.5)
    # a row recorded before the mean latency was: it cannot be priced, so it cannot be shown to meet a cost limit
    old = {"trial": 0, "params": DEFAULTS, "seconds": 1.0, "feasible": True,
           "validation": {"f1": 0.99, "exact_match": 0.5, "latency_ms_p50": 1.0, "latency_ms_p95": 1.0, "n": 4}}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "trials.jsonl").write_text(json.dumps(old) + "\n")
    priced = search_arm("rag", SPACE, DEFAULTS, FakeRunner(TABLE), tmp_path / "old", budget=6, resume=True,
                        max_cost_per_1k=0.8, cost_model=PRICEY)
    unpriced = next(t for t in priced.trials if t.params == DEFAULTS)
    assert unpriced.cost_per_1k is None and not unpriced.feasible and priced.best.params == {"mode": "bm25", "k": 3}
    unlimited = search_arm("rag", SPACE, DEFAULTS, FakeRunner(TABLE), tmp_path / "old", budget=6, resume=True)
    assert unlimited.best.params == DEFAULTS  # F1 0.99 and no cost limit: feasible


def test_no_feasible_configuration_is_a_clear_error_and_keeps_the_trials(tmp_path: Path):
    with pytest.raises(InputError, match="no configuration of arm 'rag' meets --max-p95-ms 10"):
        search_arm("rag", SPACE, DEFAULTS, FakeRunner(TABLE), tmp_path, budget=6, max_p95_ms=10)
    assert len(read_trials(tmp_path / "trials.jsonl")) == 6


def test_the_search_starts_from_the_defaults_one_setting_at_a_time_then_tpe(tmp_path: Path):
    runner = FakeRunner(TABLE)
    result = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path, budget=5, seed=3)
    assert result.sampler == "coordinate+tpe"
    assert runner.calls[0] == DEFAULTS  # the baseline the search must beat
    # then each setting changed alone, every setting's first other value before a second one
    assert runner.calls[1:4] == [{"mode": "dense", "k": 3}, {"mode": "hybrid", "k": 5}, {"mode": "bm25", "k": 3}]
    assert runner.calls[4] not in runner.calls[:4]  # TPE's, after the sweep
    assert len(runner.calls) == 5
    small = FakeRunner(TABLE)
    search_arm("rag", SPACE, DEFAULTS, small, tmp_path / "small", budget=3, seed=3)
    assert small.calls == runner.calls[:3]  # a budget below the sweep still varies every setting once
    runner = FakeRunner(TABLE)
    search_arm("rag", SPACE, DEFAULTS, runner, tmp_path / "tpe", budget=4, seed=3)
    assert len(runner.calls) == 4 and len({json.dumps(c, sort_keys=True) for c in runner.calls}) == 4
    assert all(c["mode"] in ("hybrid", "dense", "bm25") and c["k"] in (3, 5) for c in runner.calls)
    again = FakeRunner(TABLE)
    search_arm("rag", SPACE, DEFAULTS, again, tmp_path / "again", budget=4, seed=3)
    assert again.calls == runner.calls  # seeded


def test_after_the_sweep_the_settings_that_won_alone_are_tried_together(tmp_path: Path):
    """k 5 (0.50) and bm25 (0.45) each beat the defaults (0.40) alone; the next trial puts them together (bm25 with
    k 5: 0.90), before TPE — found in 5 trials whatever the sampler would have proposed."""
    runner = FakeRunner(TABLE)
    result = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path, budget=5, seed=3)
    assert runner.calls[4] == {"mode": "bm25", "k": 5} and result.best.params == {"mode": "bm25", "k": 5}
    tried = {json.dumps(t.params, sort_keys=True): t for t in result.trials}
    trial = lambda mode, k: tried[json.dumps({"k": k, "mode": mode}, sort_keys=True)]  # noqa: E731
    sweep = [trial("hybrid", 3), trial("dense", 3), trial("hybrid", 5), trial("bm25", 3)]
    assert combined_winners(DEFAULTS, sweep) == {"mode": "bm25", "k": 5}
    assert combined_winners(DEFAULTS, sweep[:3]) is None  # one winner (k 5) is its own trial: nothing to combine
    unfit = dataclasses.replace(sweep[3], feasible=False)  # over a limit (or pruned): never a winner
    assert combined_winners(DEFAULTS, [*sweep[:3], unfit]) is None
    tight = FakeRunner(TABLE)  # budget 3 varies each setting once and has no trial left to combine them
    search_arm("rag", SPACE, DEFAULTS, tight, tmp_path / "tight", budget=3, seed=3)
    assert tight.calls == runner.calls[:3]
    resumed = FakeRunner(TABLE)
    search_arm("rag", SPACE, DEFAULTS, resumed, tmp_path, budget=5, seed=3, resume=True)
    assert resumed.calls == []  # the combination is recorded like any trial


def test_a_tie_keeps_the_defaults(tmp_path: Path):
    flat = {key: (0.5, 10.0) for key in TABLE}
    result = search_arm("rag", SPACE, DEFAULTS, FakeRunner(flat), tmp_path, budget=6)
    assert result.best.params == DEFAULTS


def test_resume_skips_the_trials_already_recorded(tmp_path: Path):
    class Crash(Exception):
        pass

    first = FakeRunner(TABLE)

    def crashing(params):
        if len(first.calls) == 3:
            raise Crash
        return first(params)

    with pytest.raises(Crash):
        search_arm("rag", SPACE, DEFAULTS, crashing, tmp_path, budget=6)
    assert len(read_trials(tmp_path / "trials.jsonl")) == 3
    second = FakeRunner(TABLE)
    result = search_arm("rag", SPACE, DEFAULTS, second, tmp_path, budget=6, resume=True)
    done_before = [json.dumps(c, sort_keys=True) for c in first.calls]
    assert len(second.calls) == 3 and not {json.dumps(c, sort_keys=True) for c in second.calls} & set(done_before)
    assert len(result.trials) == 6 and result.best.params == {"mode": "bm25", "k": 5}
    assert len((tmp_path / "trials.jsonl").read_text().splitlines()) == 6
    # a resumed search judges the recorded trials by its own latency limit
    stricter = search_arm("rag", SPACE, DEFAULTS, FakeRunner(TABLE), tmp_path, budget=6, resume=True, max_p95_ms=250)
    assert stricter.best.params == {"mode": "hybrid", "k": 5}
    assert [t.params for t in stricter.trials if not t.feasible] == [{"mode": "bm25", "k": 5}]
    # without --resume the search starts over
    third = FakeRunner(TABLE)
    search_arm("rag", SPACE, DEFAULTS, third, tmp_path, budget=6)
    assert len(third.calls) == 6


def test_the_trials_are_recorded_in_the_runs_database(tmp_path: Path):
    db = tmp_path / "runs.sqlite"
    search_arm("rag", SPACE, DEFAULTS, FakeRunner(TABLE), tmp_path / "s", budget=6, max_p95_ms=250,
               runs_db=str(db))
    rows = sqlite3.connect(db).execute(
        "SELECT arm, params_json, f1, feasible, chosen FROM search_trials ORDER BY trial").fetchall()
    assert len(rows) == 6 and {r[0] for r in rows} == {"rag"}
    chosen = [json.loads(r[1]) for r in rows if r[4]]
    assert chosen == [{"k": 5, "mode": "hybrid"}]
    assert [json.loads(r[1]) for r in rows if not r[3]] == [{"k": 5, "mode": "bm25"}]
    outcomes = sqlite3.connect(db).execute("SELECT DISTINCT outcome, train_seconds FROM search_trials").fetchall()
    assert outcomes == [("completed", None)]  # nothing pruned, skipped or failed; nothing trained
    # a resumed search replaces its rows rather than adding a second copy
    search_arm("rag", SPACE, DEFAULTS, FakeRunner(TABLE), tmp_path / "s", budget=6, max_p95_ms=250,
               resume=True, runs_db=str(db))
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM search_trials").fetchone()[0] == 6


def test_trial_outcome_and_training_seconds_of_a_row():
    from ragtune.runs_db import trial_outcome

    assert trial_outcome({"pruned": True}) == "pruned" and trial_outcome({"skipped": "no index"}) == "skipped"
    assert trial_outcome({"failed": "worker died", "pruned": True}) == "failed" and trial_outcome({}) == "completed"


def test_missing_optuna_names_the_extra(tmp_path: Path, monkeypatch):
    import sys

    from ragtune.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'ragtune\[search\]'"):
        search_arm("rag", SPACE, DEFAULTS, FakeRunner(TABLE), tmp_path, budget=6)


# --- the winner must beat the defaults, not only top them -----------------------------------------------------

class ScoredRunner:
    """Per-question F1 from a table of score lists (the same validation questions for every configuration)."""

    def __init__(self, table: dict[tuple, list[float]]):
        self.table = table

    def __call__(self, params) -> TrialMetrics:
        scores = self.table[(params["mode"], params["k"])]
        return TrialMetrics(f1=sum(scores) / len(scores), exact_match=0.0, latency_ms_p50=10, latency_ms_p95=10,
                            n=len(scores), latency_ms_mean=10, f1_scores=tuple(scores))


def _scored_table(default: list[float], better: list[float]) -> dict[tuple, list[float]]:
    table = {key: [0.0] * len(default) for key in TABLE}
    table[("hybrid", 3)], table[("bm25", 5)] = default, better
    return table


def test_a_winner_by_luck_on_few_questions_leaves_the_defaults(tmp_path: Path):
    """Higher mean F1 on 4 questions (one question flipped) is not evidence: the defaults stay (best.json says why)."""
    runner = ScoredRunner(_scored_table(default=[1.0, 0.0, 0.5, 0.5], better=[1.0, 1.0, 0.5, 0.5]))
    result = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path, budget=10)
    assert result.best.params == DEFAULTS
    versus = json.loads((tmp_path / "best.json").read_text())["versus_defaults"]
    assert versus["switched"] is False and versus["delta_f1"] == 0.25 and versus["p_value"] >= 0.05
    assert versus["trial"] == next(t.number for t in result.trials if t.params == {"mode": "bm25", "k": 5})


def test_a_winner_that_beats_the_defaults_question_by_question_replaces_them(tmp_path: Path):
    default = [0.0, 0.2, 0.1, 0.0, 0.3, 0.0, 0.1, 0.2, 0.0, 0.1]
    runner = ScoredRunner(_scored_table(default=default, better=[x + 0.5 for x in default]))
    result = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path, budget=10)
    assert result.best.params == {"mode": "bm25", "k": 5}
    assert result.versus_defaults["switched"] is True and result.versus_defaults["p_value"] < 0.05
    recorded = read_trials(tmp_path / "trials.jsonl")  # per-question scores are recorded for a resumed search
    assert any(t.metrics.f1_scores == tuple(default) for t in recorded.values())


def test_the_switch_is_judged_against_how_many_trials_the_winner_was_picked_from(tmp_path: Path):
    """Bonferroni: a lead with p = 0.016 is evidence when it is the only alternative tried (0.05), not when it is
    the best of 5 (0.05 / 5 = 0.01: the best of several noisy comparisons clears 0.05 by luck far more often)."""
    default = [0.0, 0.2, 0.1, 0.0, 0.3, 0.0, 0.1, 0.2, 0.0, 0.1]
    better = [x + 0.5 if i < 7 else x for i, x in enumerate(default)]  # 7 questions better, 3 equal: p = 2/128
    runner = ScoredRunner(_scored_table(default=default, better=better))
    many = search_arm("rag", SPACE, DEFAULTS, runner, tmp_path / "many", budget=6)
    assert many.best.params == DEFAULTS
    versus = many.versus_defaults
    assert versus["compared"] == 5 and versus["alpha"] == 0.01 and versus["family_alpha"] == 0.05
    assert 0.01 <= versus["p_value"] < 0.05 and versus["switched"] is False
    # the lead these 10 questions could confirm at 0.01: (2.576 + 0.842) * sd 0.2415 / sqrt(10)
    assert versus["detectable_f1"] == pytest.approx(0.261, abs=1e-3)
    differences = [b - d for b, d in zip(better, default)]  # the winner minus the defaults, question by question
    assert versus["detectable_f1"] == pytest.approx(detectable_difference(differences, alpha=0.01), abs=1e-4)
    one = SearchSpace((Param("mode", ("hybrid", "bm25"), ""), Param("k", (3,), "")))
    table = {("hybrid", 3): default, ("bm25", 3): better}
    alone = search_arm("rag", one, DEFAULTS, ScoredRunner(table), tmp_path / "one", budget=2)
    assert alone.best.params == {"mode": "bm25", "k": 3}
    assert alone.versus_defaults["compared"] == 1 and alone.versus_defaults["switched"] is True
