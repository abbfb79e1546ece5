"""Paraphrased questions: the same fact asked in other words (augmentation that helps knowledge injection).

Ovadia et al. 2023 found fine-tuning injects facts far better when each fact is seen phrased several ways.
With an LLM the question is rewritten by a few-shot prompt (greedy, so deterministic); without one, a few safe
rewrites of the wh-phrase are applied ("When" → "On what date", "How many" → "What number of").
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from ragtune.generate.base import Generator, Messages, generate_until

MIN_QUESTION_WORDS = 4
MAX_QUESTION_WORDS = 30
QUESTION_TOKENS = 40  # new tokens a question reply may take
# Rows per generate call, in batches (paraphrasing; synthesis groups its chunks to fill about as many): the generator
# regroups its rows as they finish, so bigger calls waste fewer batch slots; the progress bars move once per call.
ROWS_PER_CALL_BATCHES = 4

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


_QUANTITY = re.compile(r"\b(?:how many|how much|number of|amount|how often|percentage|percent|how long|how far)\b", re.I)
_STOP = {"what", "who", "whom", "which", "when", "where", "why", "how", "is", "are", "was", "were", "do", "does",
         "did", "has", "have", "had", "the", "a", "an", "of", "in", "on", "at", "to", "for", "by", "with", "and",
         "or", "that", "this", "it", "its", "be", "been", "from", "as", "name", "exactly", "one", "there"}


def question_complete(text: str) -> bool:
    """Whether more of a model reply cannot change what `clean_question` makes of it, or whether it is kept: its first
    line has ended or holds a '?', or is already too long for a question. Generation of that row stops there."""
    first, newline, _ = text.lstrip().partition("\n")
    too_long = len(first.split()) > MAX_QUESTION_WORDS + 3  # + a label such as "Paraphrased question:", cut off
    return bool(first) and (bool(newline) or "?" in first or too_long)


def _content_words(text: str) -> set[str]:
    return {w.lower().rstrip("s") for w in re.findall(r"[\w'’-]+", text) if w.lower() not in _STOP and len(w) > 1}


def keeps_meaning(original: str, paraphrase: str, context: str) -> bool:
    """Whether a model rewording still asks the same thing, by cheap checks that catch the drift seen here.

    Every name and number of the original must survive; half of its other content words too; no name may
    appear that is in neither the original nor the chunk (few-shot leakage); and a question may only ask for a
    quantity if the original did ("Who proved X?" must not become "What is the number of people who proved X?").
    """
    names = set(re.findall(r"\b(?:[A-Z][\w'’-]*|\d[\d,.]*)", original[1:]))
    if any(name not in paraphrase for name in names):
        return False
    new_names = set(re.findall(r"\b[A-Z][\w'’-]*", paraphrase[1:])) - names
    if any(name not in context for name in new_names):
        return False
    if _QUANTITY.search(paraphrase) and not _QUANTITY.search(original):
        return False
    wanted = _content_words(original)
    return not wanted or len(wanted & _content_words(paraphrase)) >= 0.5 * len(wanted)


def paraphrase_with_model(generator: Generator, questions: Sequence[str], n: int, batch_size: int = 8,
                          on_batch: Callable[[int], None] | None = None) -> list[list[str]]:
    """Up to n rewordings per question; the k-th asks the model to reword the (k-1)-th, so they differ.

    on_batch(k) is called after each generate call of k questions (n * len(questions) in all: progress)."""
    results: list[list[str]] = [[] for _ in questions]
    current = list(questions)
    per_call = batch_size * ROWS_PER_CALL_BATCHES
    for _ in range(n):
        replies: list[str] = []
        for start in range(0, len(current), per_call):
            batch = [paraphrase_messages(q) for q in current[start : start + per_call]]
            replies.extend(g.text for g in generate_until(generator, batch, QUESTION_TOKENS, question_complete))
            if on_batch is not None:
                on_batch(len(batch))
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
