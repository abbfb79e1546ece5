"""ragtune.sample's loaders turn the shipped JSONL files into Examples and labels."""

from __future__ import annotations

import pytest

from ragtune.errors import InputError
from ragtune.sample import (
    InjectionLabel,
    handbook_dir,
    injection_dir,
    load_injection_labels,
    load_multihop,
    load_questions,
    load_update_questions,
    updates_dir,
)


def test_paths_point_at_the_shipped_folders():
    assert (handbook_dir() / "policies" / "leave.md").is_file()
    assert (updates_dir() / "policies" / "leave.md").is_file()
    assert (injection_dir() / "labels.jsonl").is_file()


def test_load_questions_by_split():
    train, test = load_questions("train"), load_questions("test")
    assert (len(train), len(test), len(load_questions())) == (60, 30, 90)
    first = train[0]
    assert (first.qid, first.doc_id, first.answer) == ("q001", "policies/leave.md", "27 days")
    assert first.gold_answers == ("27 days", "27")
    assert first.metadata["split"] == "train" and len(first.metadata["paraphrases"]) == 2
    assert first.metadata["evidence"].startswith("Every full-time member of staff receives 27 days")
    assert all(e.metadata["paraphrases"] == [] for e in test)


def test_load_questions_with_paraphrases_adds_two_rewordings_per_train_question():
    expanded = load_questions("train", with_paraphrases=True)
    assert len(expanded) == 180
    assert [e.qid for e in expanded[:3]] == ["q001", "q001-p1", "q001-p2"]
    assert expanded[1].answer == expanded[0].answer and expanded[1].question != expanded[0].question
    assert expanded[1].metadata["paraphrase_of"] == "q001"
    assert len(load_questions("test", with_paraphrases=True)) == 30


def test_load_questions_rejects_an_unknown_split():
    with pytest.raises(InputError, match="'dev'"):
        load_questions("dev")


def test_update_questions_carry_the_old_answer():
    updates = load_update_questions()
    assert len(updates) == 12
    leave = updates[0]
    assert (leave.answer, leave.metadata["old_answer"], leave.metadata["supersedes"]) == ("31 days", "27 days", "q001")
    old = {e.qid: e for e in load_questions()}[leave.metadata["supersedes"]]
    assert old.question == leave.question


def test_multihop_examples_name_both_documents():
    multihop = load_multihop()
    assert len(multihop) == 20
    assert multihop[0].doc_id == ""
    assert multihop[0].metadata["doc_ids"] == ["facilities/lantern-point.html", "teams/kelp-ecology.txt"]
    assert multihop[0].answer == "Rafferty Dunmore"


def test_injection_labels():
    labels = load_injection_labels()
    assert len(labels) == 16 and all(isinstance(label, InjectionLabel) for label in labels)
    assert sum(label.injected for label in labels) == 8
    canteen = next(label for label in labels if label.doc_id == "canteen-menu.md")
    assert canteen.injected and canteen.pattern == "ignore_previous_instructions"
