"""`ragtune tune` and `compare --search` usage errors: one line, exit 2, before any model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_tree import assert_usage_error, run_main

from ragtune.config import EmbedConfig, IndexConfig
from ragtune.index import Index
from ragtune.types import Document


@pytest.fixture()
def index_and_questions(tmp_path: Path) -> tuple[str, str]:
    index = Index.create(tmp_path / "index", IndexConfig(embed=EmbedConfig(model="hash:64")))
    index.add_documents([Document("a.md", "The harbour master is Ilse Varga.", "A")])
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Who is the master {i}?",
                                             "answer": "Ilse Varga", "doc_id": "a.md"}) + "\n" for i in range(3)))
    return str(tmp_path / "index"), str(questions)


@pytest.mark.parametrize("extra,message", [
    ([], "cannot split 3 question(s) into validation and test by document"),
    (["--arm", "rag,base"], "--arm takes one arm"),
    (["--arm", "nope"], "unknown arm 'nope'"),
    (["--validation-share", "1.5"], "--validation-share"),
    (["--trials", "0"], "--trials"),
    (["--validation", "synth"], "cannot synthesise validation questions: every one of the index's 1 document"),
    (["--validation", "nope"], "validation"),
    (["--max-cost-per-1k", "0"], "--max-cost-per-1k"),
    (["--search-train-minutes", "5"], "--search-train-minutes budgets the training the settings search does: add "
                                      "--train, or drop it"),  # tune always searches: only --train is missing
])
def test_tune_usage_errors_are_one_line(index_and_questions, tmp_path, capsys, extra, message):
    index, questions = index_and_questions
    argv = ["tune", "--index", index, "--questions", questions, "--out", str(tmp_path / "out"), *extra]
    code, out, err = run_main(argv, capsys)
    assert_usage_error(code, out, err, argv)
    assert message in err


def test_tune_validation_split_without_questions_is_one_line(index_and_questions, tmp_path, capsys):
    index, _questions = index_and_questions
    argv = ["tune", "--index", index, "--out", str(tmp_path / "out"), "--validation", "split"]
    code, out, err = run_main(argv, capsys)
    assert_usage_error(code, out, err, argv)
    assert "--validation split divides your questions: pass --questions FILE" in err


def test_compare_search_synth_without_a_free_document_is_one_line(index_and_questions, tmp_path, capsys):
    index, questions = index_and_questions
    argv = ["compare", "--index", index, "--questions", questions, "--out", str(tmp_path / "run"), "--arms", "base",
            "--search", "2", "--validation", "synth"]
    code, out, err = run_main(argv, capsys)
    assert_usage_error(code, out, err, argv)
    assert "cannot synthesise validation questions" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


@pytest.mark.parametrize("extra,message", [
    (["--validation", "synth"], "--validation synth applies to the settings search: add --search TRIALS"),
    (["--max-cost-per-1k", "0.01", "--max-p95-ms", "100"],
     "--max-p95-ms, --max-cost-per-1k apply to the settings search"),
    (["--search", "2", "--validation-questions", "5"], "--validation-questions sizes synthesised validation"),
    (["--search", "2", "--search-train-minutes", "5"], "--search-train-minutes budgets the training the settings "
                                                       "search does: add --train, or drop it"),
    (["--search-train-minutes", "5"], "--search-train-minutes budgets the training the settings search does: add "
                                      "--search TRIALS and --train"),
    (["--search-train-usd", "0.5", "--train"], "--search-train-usd budgets the training"),
])
def test_compare_search_options_without_their_search_are_one_line(index_and_questions, tmp_path, capsys, extra,
                                                                 message):
    index, questions = index_and_questions
    argv = ["compare", "--index", index, "--questions", questions, "--out", str(tmp_path / "run"), "--arms", "base",
            *extra]
    code, out, err = run_main(argv, capsys)
    assert_usage_error(code, out, err, argv)
    assert message in err and not (tmp_path / "run.partial").exists()


def test_compare_search_with_too_few_documents_is_one_line(index_and_questions, tmp_path, capsys):
    index, questions = index_and_questions
    argv = ["compare", "--index", index, "--questions", questions, "--out", str(tmp_path / "run"), "--arms", "base",
            "--search", "2"]
    code, out, err = run_main(argv, capsys)
    assert_usage_error(code, out, err, argv)
    assert "cannot split 3 question(s)" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


@pytest.mark.parametrize("command", ["tune", "compare"])
def test_without_optuna_the_search_names_the_extra(index_and_questions, tmp_path, capsys, monkeypatch, command):
    import sys

    monkeypatch.setitem(sys.modules, "optuna", None)
    index, questions = index_and_questions
    argv = [command, "--index", index, "--questions", questions, "--out", str(tmp_path / "out")]
    argv += ["--search", "2", "--arms", "base"] if command == "compare" else []
    code, _out, err = run_main(argv, capsys)
    assert code == 4 and err.strip().splitlines() == ["error: optuna is not installed: pip install 'ragtune[search]'"]


def test_tune_says_why_the_defaults_stayed(index_and_questions, tmp_path, capsys, monkeypatch):
    """A kept default is explained on the console as in the report: the lead, its p, the level and what lead the
    validation split could have confirmed."""
    from ragtune.workflows import tune

    versus = {"trial": 3, "delta_f1": 0.04, "p_value": 0.088, "n": 122, "alpha": 0.00625, "family_alpha": 0.05,
              "compared": 8, "switched": False, "detectable_f1": 0.081}
    validation = {"f1": 0.227, "latency_ms_p95": 2061.0}

    class Kept:
        arm, trials, sampler = "rag", [object()] * 9, "coordinate+tpe"

        def to_dict(self):
            return {"params": {"k": 3}, "validation": validation, "default_validation": validation,
                    "versus_defaults": versus}

    monkeypatch.setattr(tune, "run_tune", lambda config, trials_on=None: Kept())
    index, questions = index_and_questions
    code, out, err = run_main(["tune", "--index", index, "--questions", questions, "--out", str(tmp_path / "o")],
                              capsys)
    assert code == 0, err
    assert ("The defaults were kept: the best trial (3) led by +0.040 F1 on 122 validation questions, paired "
            "p=0.088, not below 0.00625 (0.05 over the 8 trials it was the best of)") in out
    assert "122 validation questions confirm a lead of about +0.081 F1" in out
