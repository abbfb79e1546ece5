"""Answer-span extraction and rule-based question building on hand-written sentences."""

from __future__ import annotations

import random

import pytest

from ragtune.train.answer_spans import passage_sentences as sentence_spans  # the answer-span view of the one splitter
from ragtune.train.answer_spans import choose_spans, extract_answer_spans
from ragtune.train.question_rules import rule_question


def spans_by_text(text: str) -> dict[str, str]:
    return {s.text: s.kind for s in extract_answer_spans(text)}


@pytest.mark.parametrize(
    "sentence, answer, kind",
    [
        ("The game was played on February 7, 2016 in Santa Clara.", "February 7, 2016", "date"),
        ("The institute was founded on 14 March 1979 by two scientists.", "14 March 1979", "date"),
        ("The castle was finished in 1066 after a long siege.", "1066", "year"),
        ("The company employs about 1,200 people in Berlin.", "1,200 people", "number"),
        ("The basin encompasses 7,000,000 square kilometres of forest.", "7,000,000 square kilometres", "number"),
        ("Staff may claim an allowance of £350 for a chair.", "£350", "money"),
        ("Turnout rose to 70% in the last election.", "70%", "percent"),
        ("Access to the archive requires form CA-3 signed by a manager.", "CA-3", "code"),
        ("The ombudsperson is Dr Hettie Brannagh, who works alone.", "Dr Hettie Brannagh", "person"),
        ("The tank opened in the Deepwell Hall at Saltmere Harbour.", "Saltmere Harbour", "place"),
        ('The league emphasized the "golden anniversary" with gold-themed initiatives.', "golden anniversary", "quote"),
        ("Every plot is visited in May by the divers.", "May", "date"),
    ],
)
def test_span_kinds(sentence, answer, kind):
    found = spans_by_text(sentence)
    assert found.get(answer) == kind, found


def test_sentence_initial_common_words_are_not_names():
    found = spans_by_text("The Denver Broncos won the game. Several teams lost. Super Bowl 50 was played in 2016.")
    assert "Denver Broncos" in found and "The Denver Broncos" not in found
    assert "Several" not in found
    assert "Super Bowl 50" in found


def test_spans_are_exact_substrings_at_their_offsets():
    text = "Luther was born on 10 November 1483 in Eisleben. He died in 1546, aged 62, in the same town."
    spans = extract_answer_spans(text)
    assert spans, "expected candidate spans"
    for span in spans:
        assert text[span.start : span.end] == span.text
        assert span.sentence_start <= span.start < span.end <= span.sentence_end
    # no two spans overlap
    ordered = sorted(spans, key=lambda s: s.start)
    assert all(a.end <= b.start for a, b in zip(ordered, ordered[1:]))


def test_sentence_split_keeps_abbreviations_and_splits_list_items():
    text = "Dr. Smith met Mr. Jones in the U.S. last year. They talked.\n- 1986: the first cores were taken."
    sentences = [text[a:b] for a, b in sentence_spans(text)]
    assert sentences == [
        "Dr. Smith met Mr. Jones in the U.S. last year.",
        "They talked.",
        "1986: the first cores were taken.",
    ]


def test_choose_spans_is_seeded_and_spreads_over_sentences():
    text = "Alice Brown joined in 1990. Bob Green left in 1995. Carol White stayed until 2001."
    spans = extract_answer_spans(text)
    first = choose_spans(spans, 3, random.Random(7))
    again = choose_spans(spans, 3, random.Random(7))
    assert first == again
    assert len({s.sentence_start for s in first}) == 3  # one per sentence before any repeats
    assert len({s.text for s in first}) == 3


def question_for(text: str, answer: str) -> str | None:
    span = next(s for s in extract_answer_spans(text) if s.text == answer)
    return rule_question(text, span)


@pytest.mark.parametrize(
    "text, answer, question",
    [
        ("The game was played on February 7, 2016, at Levi's Stadium.", "February 7, 2016", "When was the game played?"),
        ("The game was played on February 7, 2016, at Levi's Stadium.", "Levi's Stadium",
         "Where was the game played on February 7, 2016?"),
        ("The Brinewell Laboratory opened in 1997.", "1997", "In what year did the Brinewell Laboratory open?"),
        ("The ombudsperson is Hettie Brannagh, who is not employed by any team.", "Hettie Brannagh",
         "Who is the ombudsperson?"),
        ("Every concern is acknowledged within 5 working days.", "5",
         "Within how many working days is every concern acknowledged?"),
        ("The Kelp Ecology Team maintains 42 permanent survey plots in Gannet Reach.", "42",
         "How many permanent survey plots does the Kelp Ecology Team maintain in Gannet Reach?"),
        ("The Denver Broncos defeated the Carolina Panthers to earn their third title.", "Denver Broncos",
         "Who defeated the Carolina Panthers to earn their third title?"),
        ("The Broncos defeated the NFC champion Carolina Panthers in the final.", "Carolina Panthers",
         "Which NFC champion did the Broncos defeat in the final?"),
        ("Each remote work agreement is reviewed every 12 months.", "12 months",
         "How often is each remote work agreement reviewed?"),
    ],
)
def test_rule_questions(text, answer, question):
    assert question_for(text, answer) == question


@pytest.mark.parametrize(
    "text, answer",
    [
        ("Super Bowl 50 was an American football game.", "American"),  # modifier inside a longer phrase
        ("The English FA offered two of the six Premier League packages.", "two"),  # partitive
        ("As this was the 50th Super Bowl, the league emphasized gold.", "Super Bowl"),  # subordinate clause
    ],
)
def test_rule_question_declines_unclean_shapes(text, answer):
    assert question_for(text, answer) is None
