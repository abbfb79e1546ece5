"""Extractive answers: the reply is a span copied from the sources shown, never words of the model's own.

Answer form "snap" (AnswerSettings.answer_form): the model answers freely and its answer is replaced by the span of
the passages (at most MAX_SNAP_WORDS words) that overlaps it best (`snap_to_sources`); an answer that shares no
word with them stays as written. Any generator, the same way.

Answer form "span" constrains decoding: at each step a local model may only pick a
token that continues a word-aligned span of one of the passages in its prompt, or end the span. The model still
chooses which span (greedily, by its own scores), so it reads as before; it can no longer paraphrase, pad the
answer with a restated question or invent a name that is not in the sources. A generator that cannot constrain its
decoding (an OpenAI-compatible endpoint) answers freely and its reply is snapped afterwards to the passage span
that best overlaps it (`snap_to_sources`), so "span" always returns words of the sources.

Answer form "free-or-span" checks first: the model answers freely, and an answer a passage shown holds (`source_of`)
stays as written; only the others are decoded again as spans (an endpoint's are snapped). A small reader's free
answer is good when the passages hold it and mostly wrong when they do not (an invented name, a restated question),
while span decoding trims some good free answers: SQuAD bench, 200 questions each (hybrid top 3, bundled 135M model,
guided prompt, 3 context sentences), F1 free -> span -> free-or-span: articles 0-3 0.216 -> 0.264 -> 0.278 (+0.062,
paired p < 0.001; 45% of the free answers held: F1 0.389 there, 0.078 elsewhere, 0.190 as spans); articles 10-13,
never used to develop it, 0.224 -> 0.282 -> 0.286 (+0.062, p 0.0015; 55% held: 0.334, 0.093 elsewhere, 0.227 as
spans). About half the questions are decoded twice (a span is short and constrained).

Token bookkeeping: every source is tokenized as it follows a space, so its word-initial tokens carry the space;
a reply starts at the beginning of the assistant turn, where the model writes a word without it, so the first
token may also be the space-less twin of a word-initial source token ("Denver" for " Denver").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ragtune.text import bag_f1, normalize_answer

ANSWER_FORMS = ("free", "snap", "span", "free-or-span")
# A span does not begin with an article: left free, a small model opens with "the" and is then held to whatever
# follows "the" in the passages (on 200 SQuAD questions the first answers it wrote were "the English throne" for
# "1072" and "The" alone). Scorers drop articles anyway.
NOT_FIRST = frozenset({"the", "a", "an"})
MAX_SNAP_WORDS = 12  # longest span snap_to_sources considers (SQuAD answers: 3 words on average)

_WORD = re.compile(r"\S+")


class SpanConstraint:
    """The tokens a reply may continue with so that it stays a word-aligned span of one of `sources`.

    `allowed(reply)` is the set of next tokens for the reply's tokens so far; end tokens (`vocab.end`: a citation
    bracket, a newline) and `stop` tokens (end of sequence) are allowed wherever the reply ends on a word boundary, and
    after an end token only `stop` tokens. A span begins on a word's first token (not an article) and ends before a
    word boundary: digits, which the tokenizer splits one per token, are never cut inside a number.
    """

    def __init__(self, vocab: TokenVocab, sources: Sequence[str], stop: Sequence[int]):
        self.end, self.stop = frozenset(vocab.end), frozenset(stop)
        self.sequences = [vocab.tokenizer(" " + " ".join(text.split()), add_special_tokens=False)["input_ids"]
                          for text in sources if text.strip()]
        # per source, per position: does a word begin there (a span may end just before it), and may a span begin
        # there (a word's first token, not an article)
        self.boundary: list[list[bool]] = []
        self.first: dict[int, list[tuple[int, int]]] = {}
        for s, sequence in enumerate(self.sequences):
            texts = [vocab.text(token) for token in sequence]
            bounds = [i == 0 or _boundary(texts[i - 1], texts[i]) for i in range(len(sequence))]
            self.boundary.append(bounds)
            ends = [j for j in range(1, len(sequence)) if bounds[j]] + [len(sequence)]
            for i, token in enumerate(sequence):
                if not bounds[i]:
                    continue
                word = "".join(texts[i : next(j for j in ends if j > i)]).strip()  # the whole word, not one piece
                if word[:1].isalnum() and word.lower() not in NOT_FIRST:
                    for alias in {token, vocab.twin(token)} - {None}:
                        self.first.setdefault(alias, []).append((s, i))

    def allowed(self, reply: Sequence[int]) -> frozenset[int] | set[int]:
        if not reply:
            return set(self.first) or set(self.stop)
        if reply[-1] in self.end or reply[-1] in self.stop:
            return self.stop
        positions = self.first.get(reply[0], [])
        tail = list(reply[1:])
        allowed: set[int] = set()
        for s, i in positions:
            sequence = self.sequences[s]
            if sequence[i + 1 : i + 1 + len(tail)] != tail:
                continue
            following = i + 1 + len(tail)
            if following < len(sequence):
                allowed.add(sequence[following])
            if following >= len(sequence) or self.boundary[s][following]:
                allowed |= self.end | self.stop
        return allowed or self.stop


class TokenVocab:
    """A tokenizer's token texts and each space-led token's space-less twin, looked up once (keep one per model)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self._texts: dict[int, str] = {}
        self._twins: dict[int, int | None] = {}
        self.end = end_tokens(tokenizer)

    def text(self, token: int) -> str:
        if token not in self._texts:
            self._texts[token] = self.tokenizer.decode([token])
        return self._texts[token]

    def twin(self, token: int) -> int | None:
        if token not in self._twins:
            text = self.text(token)
            twin = None
            if text.startswith(" ") and text[1:]:
                ids = self.tokenizer(text[1:], add_special_tokens=False)["input_ids"]
                twin = ids[0] if len(ids) == 1 else None
            self._twins[token] = twin
        return self._twins[token]


def _boundary(before: str, text: str) -> bool:
    """Whether a word boundary lies between two adjacent tokens' texts (" 1", "9" do not: digits split one a token)."""
    return not before or not before[-1].isalnum() or not text[:1].isalnum()


def end_tokens(tokenizer: Any) -> list[int]:
    """Tokens that end a span: a citation's opening bracket and a newline (single tokens in the vocabulary)."""
    ids = []
    for text in (" [", "[", "\n"):
        encoded = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(encoded) == 1:
            ids.append(encoded[0])
    return ids


def span_text(reply: str) -> str:
    """The span of a constrained reply: what precedes its end token (a citation bracket, a newline), without a
    trailing comma, semicolon or colon.

    >>> span_text("Gustave Eiffel, [1]")
    'Gustave Eiffel'
    """
    return re.split(r"\[|\n", reply, maxsplit=1)[0].strip().rstrip(",;:").strip()


def source_of(span: str, sources: Sequence[str]) -> int | None:
    """The 1-based number of the first source that holds `span` (compared normalised), else None.

    >>> source_of("Denver", ["Paris.", "The Broncos of Denver."])
    2
    """
    wanted = normalize_answer(span)
    if not wanted:
        return None
    for number, text in enumerate(sources, start=1):
        if f" {wanted} " in f" {normalize_answer(text)} ":
            return number
    return None


def snap_to_sources(answer: str, sources: Sequence[str], max_words: int = MAX_SNAP_WORDS) -> str:
    """The span of `sources` (at most `max_words` words) with the best token F1 against `answer`, shortest first
    on ties; `answer` itself when no span shares a word with it.

    >>> snap_to_sources("It was Denver, Colorado", ["The Broncos of Denver won in 2016."])
    'Denver'
    """
    wanted = normalize_answer(answer).split()
    if not wanted:
        return answer
    best, best_score = answer, 0.0
    for text in sources:
        words = _WORD.findall(text)
        normal = [normalize_answer(w) for w in words]
        for i in range(len(words)):
            if not normal[i] or normal[i] not in wanted:
                continue  # spans start on a word of the answer
            for j in range(i + 1, min(len(words), i + max_words) + 1):
                if not normal[j - 1] or normal[j - 1] not in wanted:
                    continue  # and end on one
                score = bag_f1([w for w in normal[i:j] if w], wanted)
                if score > best_score:
                    best, best_score = " ".join(words[i:j]).strip(".,;:!?\"'()"), score
    return best

