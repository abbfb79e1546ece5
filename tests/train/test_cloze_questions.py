"""Wh-cloze questions: the answer's clause kept in order, the answer replaced by its wh-phrase in front."""

from __future__ import annotations

import pytest

from ragtune.train.answer_spans import extract_answer_spans
from ragtune.train.cloze_questions import cloze_question


def _question(text: str, answer: str) -> str | None:
    span = next(s for s in extract_answer_spans(text) if s.text == answer)
    return cloze_question(text, span)


@pytest.mark.parametrize(
    "text, answer, question",
    [
        # the preposition the wh-word absorbs goes with the answer
        ("In November 1990 Sky was formed by the merger of Sky Television and BSB.", "November 1990",
         "When Sky was formed by the merger of Sky Television and BSB?"),
        # only the comma segment holding the answer is asked about
        ("Founded in 1979, the institute is run by Ilse Vantongeren.", "Ilse Vantongeren",
         "Who the institute is run by?"),
        # the determiner before the answer goes with it
        ("Every concern is handled by the Finance Office of the institute.", "Finance Office",
         "What every concern is handled by of the institute?"),
        ("The Kelp Ecology Team maintains 42 permanent survey plots in Gannet Reach.", "42",
         "How many the Kelp Ecology Team maintains permanent survey plots in Gannet Reach?"),
    ],
)
def test_cloze_question_shapes(text, answer, question):
    assert _question(text, answer) == question


def test_no_question_when_too_little_is_left_or_the_answer_owns_what_follows():
    assert _question("It was Sky.", "Sky") is None  # "What it was?": under three words of context
    assert _question("The broadcaster BSkyB's monopoly came to an end in 2007.", "BSkyB") is None
    # a segment that starts mid-thought ("and ...", "which ...") is not asked about
    assert _question("The lab opened in 1997, and it was designed by Halvard Stenmoe.", "Halvard Stenmoe") is None
