"""Loading and validating training inputs (QA JSONL, chat JSONL, SQuAD JSON) and the by-document split."""

from __future__ import annotations

import json

import pytest

from ragtune.errors import InputError
from ragtune.train.data import load_examples, split_by_document
from ragtune.types import Example


def _write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_qa_jsonl_with_bad_lines_reports_line_numbers(tmp_path):
    path = _write_lines(tmp_path / "qa.jsonl", [
        json.dumps({"question": "Who runs Ostrava lab?", "answer": "Ida Kroll", "doc_id": "teams/lab.md",
                    "paraphrases": ["Who leads the lab?"], "split": "train"}),
        "{not json",
        json.dumps({"question": "", "answer": "x"}),
        json.dumps({"question": "When?", "answers": ["1998", "in 1998"], "id": "q9"}),
        json.dumps(["a", "list"]),
        json.dumps({"question": "How many?", "answer": 42}),
        json.dumps({"question": "Too long?", "answer": "y" * 5000}),
    ])
    loaded = load_examples(path)
    assert [e.question for e in loaded.examples] == ["Who runs Ostrava lab?", "When?", "How many?"]
    first = loaded.examples[0]
    assert (first.answer, first.doc_id) == ("Ida Kroll", "teams/lab.md")
    assert first.metadata == {"paraphrases": ["Who leads the lab?"], "split": "train"}
    assert loaded.examples[1].answer == "1998" and loaded.examples[1].answers == ("1998", "in 1998")
    assert loaded.examples[1].qid == "q9"
    assert loaded.examples[2].answer == "42"
    assert [e.split(":")[1] for e in loaded.errors] == ["2", "3", "5", "7"]
    assert "invalid JSON" in loaded.errors[0] and "'question' is empty" in loaded.errors[1]
    assert "too long" in loaded.errors[3]
    assert loaded.format == "qa"


def test_chat_jsonl(tmp_path):
    record = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital?"},
                           {"role": "assistant", "content": "Tartu"}]}
    bad = {"messages": [{"role": "user", "content": "No answer"}]}
    weird = {"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}
    loaded = load_examples(_write_lines(tmp_path / "chat.jsonl", [json.dumps(record), json.dumps(bad),
                                                                    json.dumps(weird)]))
    assert len(loaded.examples) == 1
    example = loaded.examples[0]
    assert (example.question, example.answer) == ("Capital?", "Tartu")
    assert example.metadata["messages"][0]["content"] == "Be brief."
    assert "last message must be the assistant" in loaded.errors[0] and ":2:" in loaded.errors[0]
    assert "unknown role 'robot'" in loaded.errors[1]
    assert loaded.format == "chat"


def test_squad_json(tmp_path):
    data = {"data": [{"title": "Harbour_Works", "paragraphs": [
        {"context": "The harbour opened in 1871. It was built by Lina Park.",
         "qas": [{"id": "a1", "question": "When did the harbour open?", "answers": [{"text": "1871", "answer_start": 22}]},
                 {"id": "a2", "question": "Who built it?", "answers": []}]},
        {"context": "", "qas": []},
    ]}]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = load_examples(path)
    assert len(loaded.examples) == 1
    example = loaded.examples[0]
    assert (example.answer, example.doc_id, example.qid) == ("1871", "Harbour_Works#0", "a1")
    assert example.context.startswith("The harbour opened")
    assert len(loaded.errors) == 2 and "no answers" in loaded.errors[0] and "empty 'context'" in loaded.errors[1]
    assert loaded.format == "squad"


def test_nothing_valid_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"no valid training examples.*:1: invalid JSON"):
        load_examples(_write_lines(tmp_path / "bad.jsonl", ["nope", "{}"]))
    with pytest.raises(InputError, match="not found"):
        load_examples(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="not SQuAD format"):
        load_examples(_write_lines(tmp_path / "x.json", ['{"a": 1}']))
    (tmp_path / "latin1.jsonl").write_bytes(b'{"question": "caf\xe9"}\n')
    with pytest.raises(InputError, match="not valid UTF-8"):
        load_examples(tmp_path / "latin1.jsonl")


def test_split_by_document_keeps_documents_apart():
    examples = [Example(question=f"q{d}-{i}", answer="a", doc_id=f"doc{d}") for d in range(10) for i in range(d % 3 + 1)]
    train, test = split_by_document(examples, test_fraction=0.3, seed=1)
    assert len(train) + len(test) == len(examples)
    assert {e.doc_id for e in train}.isdisjoint({e.doc_id for e in test})
    assert 0.2 <= len(test) / len(examples) <= 0.4
    assert split_by_document(examples, 0.3, seed=1) == (train, test)  # deterministic
    assert split_by_document(examples, 0.3, seed=2) != (train, test)
    assert train == [e for e in examples if e in train]  # original order kept


def test_split_groups_by_context_and_can_split_by_example():
    examples = [Example(question=f"q{i}", answer="a", context=f"passage {i // 2}") for i in range(20)]
    train, test = split_by_document(examples, test_fraction=0.5, seed=0)
    assert {e.context for e in train}.isdisjoint({e.context for e in test})
    assert len(test) == 10
    train, test = split_by_document(examples, test_fraction=0.25, seed=0, by_document=False)
    assert len(test) == 5
    assert split_by_document(examples, 0.0) == (examples, [])
    with pytest.raises(InputError, match="test_fraction"):
        split_by_document(examples, 1.5)
