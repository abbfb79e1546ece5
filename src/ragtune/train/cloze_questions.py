"""Wh-cloze questions: the fallback that gives RAFT more to read when the wh-transformation rules cannot.

The rules (question_rules.py) turn only clean sentence shapes into fluent questions — about one answer span in
ten on SQuAD paragraphs. A wh-cloze question keeps the words of the answer's clause in their order, drops the
answer (with the preposition and determiner a wh-word absorbs) and puts the wh-phrase of its kind in front:

    "In November 1990 Sky was formed by the merger of Sky Television and BSB." + "November 1990"
    → "When Sky was formed by the merger of Sky Television and BSB?"

Not grammatical English, but the question names what is asked (its wh-phrase and the clause's words) and the
answer is a span of the passage: what a reader model must learn to find. Unsupervised extractive-QA work
trains readers on such questions; here they add training examples without a model in the loop.
"""

from __future__ import annotations

from ragtune.train.answer_spans import AnswerSpan
from ragtune.train.question_rules import (
    _ABSORBED,
    _CLAUSE_WORDS,
    _DETERMINERS,
    _INTRO,
    _clause,
    _finish,
    _lower_first,
    answer_sentence,
    wh_word,
)

_MIN_BODY_WORDS = 3


def cloze_question(text: str, span: AnswerSpan) -> str | None:
    """The wh-cloze question about span, from the comma segment of its sentence holding it; None when too little
    of the segment is left or it starts mid-thought ("following ...", "which ...").

    >>> from ragtune.train.answer_spans import extract_answer_spans
    >>> t = "In November 1990 Sky was formed by the merger of Sky Television and BSB."
    >>> cloze_question(t, next(s for s in extract_answer_spans(t) if s.kind == "date"))
    'When Sky was formed by the merger of Sky Television and BSB?'
    """
    cleaned = answer_sentence(text, span)
    if cleaned is None:
        return None
    sentence, a, b = cleaned
    start, end = _clause(sentence, a, b) or (0, len(sentence))
    clause = sentence[start:end]
    a, b = a - start, b - start
    before, after = clause[:a].split(), clause[b:].strip()
    if after[:1] in {"'", "’"}:
        return None  # the answer owns what follows ("BSkyB's monopoly")
    wh = wh_word(span, before[-1].lower() if before else "")
    if before and before[-1].lower() in _ABSORBED.get(wh, set()):
        before = before[:-1]
    if before and before[-1].lower() in _DETERMINERS:
        before = before[:-1]
    words = before + after.split()
    if len(words) < _MIN_BODY_WORDS or words[0].lower() in _INTRO | _CLAUSE_WORDS:
        return None
    return _finish(f"{wh} {_lower_first(' '.join(words), text)}")
