"""Prompt building with numbered sources and parsing of replies (ragtune.generate.prompts)."""

from __future__ import annotations

import pytest

from ragtune.generate.prompts import (
    SYSTEM_CLOSED,
    SYSTEM_RAG,
    build_messages,
    format_raft_target,
    format_sources,
    parse_answer,
)
from ragtune.types import Chunk, Hit


def _hit(text, title="", n=0):
    return Hit(Chunk(f"d{n}#0", f"d{n}", text, title=title), 1.0, rank=n)


def test_sources_are_numbered_in_rank_order_with_titles():
    text = format_sources([_hit("Alpha text.", "Alpha"), _hit("Beta text.", n=1)])
    assert text == "[2] Beta text.\n\n[1] Alpha: Alpha text."  # best (rank 1) listed last, next to the question


def test_sources_are_truncated():
    assert format_sources([_hit("x" * 50)], max_chars=10) == "[1] " + "x" * 10


def test_rag_and_closed_book_messages():
    rag = build_messages(" Who? ", [_hit("Ann wrote it.", "Report")])
    assert rag[0] == {"role": "system", "content": SYSTEM_RAG}
    assert rag[1]["role"] == "user"
    assert "[1] Report: Ann wrote it." in rag[1]["content"]
    assert rag[1]["content"].rstrip().endswith("Who?")
    closed = build_messages("Who?", None)
    assert closed[0]["content"] == SYSTEM_CLOSED
    assert "Sources" not in closed[1]["content"] and "Who?" in closed[1]["content"]


def test_parse_answer_markers_and_citations():
    parsed = parse_answer('Quote: [2] "Ann wrote it"\nAnswer: Ann [2]')
    assert parsed.answer == "Ann" and parsed.cited == (2,)
    plain = parse_answer("Paris [1][3] and [1]")
    assert plain.cited == (1, 3)
    assert "[" not in plain.answer and plain.answer.startswith("Paris")
    assert parse_answer("  ").answer == ""


def test_raft_target_round_trips_through_parse():
    target = format_raft_target("Ann", "Ann wrote the report.", 2)
    parsed = parse_answer(target)
    assert parsed.answer == "Ann" and parsed.cited == (2,)
    assert parse_answer(format_raft_target("Ann", None, None)).answer == "Ann"


def test_parse_answer_strips_boilerplate_lead_ins():
    assert parse_answer('The answer to your question is: "Formal Imperialism"').answer == "Formal Imperialism"
    assert parse_answer("The answer is: [2] Joseph Swan.").answer == "Joseph Swan."
    assert parse_answer("The answer is: [2] Joseph Swan.").cited == (2,)
    assert parse_answer("According to the source [1], it opened in 1889.").answer == "it opened in 1889."
    assert parse_answer("The answer is:\n\nParis.").answer == "Paris."
    assert parse_answer("The answer to this question is:").answer == ""
    assert parse_answer("Answer is the key").answer == "Answer is the key"  # no colon: not a lead-in
    assert parse_answer("Paris\nThe capital of France.").answer == "Paris"  # first line only


@pytest.mark.parametrize(
    "text, complete",
    [
        ("HR-12", False),  # the line may still grow
        ("HR-12\n", True),
        ("The answer is:\nHR-12", False),  # a bare lead-in is not an answer
        ("The answer is:\nHR-12\n", True),
        ('Quote: [2] "Ann wrote it"\n', False),  # the quote line comes before the answer
        ('Quote: [2] "Ann wrote it"\nAnswer: Ann [2]\n', True),
        ("\n\n", False),
    ],
)
def test_answer_line_complete(text, complete):
    from ragtune.generate.prompts import answer_line_complete, parse_answer

    assert answer_line_complete(text) is complete
    if complete:  # nothing after the stop point could change the parsed answer
        assert parse_answer(text).answer == parse_answer(text + "More rambling\nand more.").answer


@pytest.mark.parametrize(
    "answer, question, expected",
    [
        ("The group that headlined the Super Bowl 50 halftime show was the British rock group Coldplay.",
         "Which group headlined the Super Bowl 50 halftime show?", "the British rock group Coldplay"),
        ("The institute's safety officer is Dagny Ferrow.", "Who is the institute's safety officer?", "Dagny Ferrow"),
        ("Edward the Confessor. He appointed Robert of Jumièges in 1051.", "Who appointed Robert?",
         "Edward the Confessor"),
        ("Dr. Maren Okonkwo-Lisle leads it.", "Who leads the group?", "Dr. Maren Okonkwo-Lisle leads it."),
        ("I do not know.", "Leave days?", "I do not know."),
        ("The U.S. Army base", "Which base?", "The U.S. Army base"),
        ("HR-12", "Which form do I fill in?", "HR-12"),
        ("Coldplay was chosen over Beyoncé", "Which band headlined?", "Coldplay was chosen over Beyoncé"),
    ],
)
def test_condense_answer(answer, question, expected):
    from ragtune.generate.prompts import condense_answer

    assert condense_answer(answer, question) == expected
