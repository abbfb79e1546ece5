"""An optional LLM judge of faithfulness, for when a stronger model or endpoint is configured.

The offline default (ragtune.evaluate.grounding.faithfulness) measures lexical support; a judge asks a
model whether the passages support the answer. Use a model stronger than the one being judged: the bundled
135M model is not a reliable judge. Plug it in with `score_run(..., judge=GeneratorJudge(generator))`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

JUDGE_SYSTEM = (
    "You check answers against sources. Reply with exactly one word: YES if the sources state or directly "
    "imply the answer, NO otherwise."
)
_VERDICT = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def judge_messages(answer: str, passages: Sequence[str], max_chars: int = 1500) -> list[dict[str, str]]:
    """The chat messages asking whether `passages` support `answer`."""
    sources = "\n\n".join(f"[{i}] {p[:max_chars].strip()}" for i, p in enumerate(passages, start=1))
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": f"Sources:\n{sources}\n\nAnswer: {answer.strip()}\n\nIs the answer supported?"},
    ]


def parse_verdict(text: str) -> float:
    """1.0 for a YES, 0.0 for a NO, 0.5 when the reply holds neither (the first verdict word counts)."""
    match = _VERDICT.search(text)
    if match is None:
        return 0.5
    return 1.0 if match.group(1).lower() == "yes" else 0.0


class GeneratorJudge:
    """A FaithfulnessJudge backed by any ragtune Generator (a local HF model or an OpenAI-compatible endpoint)."""

    def __init__(self, generator: Any, batch_size: int = 8, max_new_tokens: int = 4):
        self.generator = generator
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens

    def __call__(self, answers: Sequence[str], passages: Sequence[Sequence[str]]) -> list[float]:
        """A support score in {0, 0.5, 1} per answer."""
        messages = [judge_messages(a, p) for a, p in zip(answers, passages)]
        scores: list[float] = []
        for start in range(0, len(messages), self.batch_size):
            batch = messages[start : start + self.batch_size]
            scores.extend(parse_verdict(g.text) for g in self.generator.generate(batch, max_new_tokens=self.max_new_tokens))
        return scores
