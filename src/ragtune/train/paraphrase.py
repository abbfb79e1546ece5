"""Paraphrased questions: the same fact asked in other words (augmentation that helps knowledge injection).

Ovadia et al. 2023 found fine-tuning injects facts far better when each fact is seen phrased several ways.
With an LLM the question is rewritten by a few-shot prompt (greedy, so deterministic); without one, a few safe
rewrites of the wh-phrase are applied ("When" → "On what date", "How many" → "What number of").
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from ragtune.generate.base import Generator, Messages

SYSTEM_PARAPHRASE = (
    "You rewrite questions. Reply with one question that asks exactly the same thing in different words. "
    "Keep every name and number. Reply with the question only."
)
_SHOTS = [
    ("When was the game played?", "On what date did the game take place?"),
    ("Who defeated the Carolina Panthers in Super Bowl 50?", "Which team beat the Carolina Panthers in Super Bowl 50?"),
    ("How many employees work in the Berlin office?", "What is the number of people employed at the Berlin office?"),
]

# (pattern on the question's opening, replacements) — applied only where the result stays grammatical.
_RULES: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(r"^When (was|were|did|is|are|does) "), ("At what time {0} ", "On what date {0} ")),
    (re.compile(r"^In what year (was|were|did|is|are|does) "), ("When {0} ", "In which year {0} ")),
    (re.compile(r"^Where (was|were|did|is|are|does) "), ("In what place {0} ", "At what location {0} ")),
    (re.compile(r"^How many (\w+) "), ("What number of {0} ",)),
    (re.compile(r"^How much "), ("What amount ",)),
    (re.compile(r"^What percentage "), ("What share ", "What percent ")),
    (re.compile(r"^How often "), ("At what interval ",)),
    (re.compile(r"^Who (was|is|did|does|has|had) "), ("Which person {0} ", "Who exactly {0} ")),
    (re.compile(r"^Who "), ("Who exactly ",)),
    (re.compile(r"^What (was|were|is|are|did|does|has|had) "), ("What exactly {0} ",)),
    (re.compile(r"^Which (.+?) (was|were|is|are|did|does) "), ("What {0} {1} ",)),
]


def paraphrase_messages(question: str) -> Messages:
    """Few-shot chat messages asking the model to reword one question."""
    messages: Messages = [{"role": "system", "content": SYSTEM_PARAPHRASE}]
    for original, reworded in _SHOTS:
        messages.append({"role": "user", "content": f"Question: {original}"})
        messages.append({"role": "assistant", "content": reworded})
    messages.append({"role": "user", "content": f"Question: {question}"})
    return messages


def clean_question(text: str) -> str:
    """First line of a model reply, without a 'Question:' label or quotes, ending at its first '?'."""
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(?:rewritten |new |paraphrased )?question\s*\d*\s*:\s*", "", line, flags=re.IGNORECASE)
    line = line.strip(" \"'“”*")
    if "?" in line:
        line = line[: line.index("?") + 1]
    return line


def paraphrase_with_model(generator: Generator, questions: Sequence[str], n: int, batch_size: int = 8) -> list[list[str]]:
    """Up to n rewordings per question; the k-th asks the model to reword the (k-1)-th, so they differ."""
    results: list[list[str]] = [[] for _ in questions]
    current = list(questions)
    for _ in range(n):
        replies: list[str] = []
        for start in range(0, len(current), batch_size):
            batch = [paraphrase_messages(q) for q in current[start : start + batch_size]]
            replies.extend(g.text for g in generator.generate(batch, max_new_tokens=40))
        for i, reply in enumerate(replies):
            cleaned = clean_question(reply)
            if cleaned:
                results[i].append(cleaned)
                current[i] = cleaned
    return results


def paraphrase_with_rules(question: str, n: int, rng: random.Random) -> list[str]:
    """Up to n rule-based rewordings of the wh-phrase (an empty list when no rule applies)."""
    for pattern, replacements in _RULES:
        m = pattern.match(question)
        if not m:
            continue
        options = list(replacements)
        rng.shuffle(options)
        out = []
        for template in options[:n]:
            opening = template.format(*m.groups())
            out.append(opening + question[m.end() :])
        return out
    return []
