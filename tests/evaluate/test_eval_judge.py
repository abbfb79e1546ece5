"""The optional LLM faithfulness judge, driven by a scripted generator."""

from __future__ import annotations

from ragtune.evaluate.grounding import faithfulness
from ragtune.evaluate.judge import GeneratorJudge, judge_messages, parse_verdict
from ragtune.types import Generation


class ScriptedGenerator:
    def __init__(self, replies):
        self.replies = list(replies)
        self.batches = []

    def generate(self, batch, max_new_tokens=64):
        self.batches.append(batch)
        return [Generation(text=self.replies.pop(0)) for _ in batch]


def test_parse_verdict():
    assert parse_verdict("YES") == 1.0
    assert parse_verdict("No, it is not.") == 0.0
    assert parse_verdict("Yes. No doubt.") == 1.0  # the first verdict word counts
    assert parse_verdict("maybe") == 0.5
    assert parse_verdict("yesterday") == 0.5  # whole words only


def test_judge_messages_number_the_sources():
    messages = judge_messages("42", ["The answer is 42.", "Other."])
    assert messages[0]["role"] == "system"
    assert "[1] The answer is 42." in messages[1]["content"] and "[2] Other." in messages[1]["content"]
    assert "Answer: 42" in messages[1]["content"]


def test_generator_judge_batches_and_plugs_into_faithfulness():
    generator = ScriptedGenerator(["YES", "NO", "yes"])
    judge = GeneratorJudge(generator, batch_size=2)
    scores = faithfulness(["a1", "a2", "a3", "a4"], [["p"], ["p"], [], ["p"]], judge=judge)
    assert scores == [1.0, 0.0, None, 1.0]  # the closed-book row is not sent to the judge
    assert [len(b) for b in generator.batches] == [2, 1]
