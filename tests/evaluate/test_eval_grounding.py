"""Faithfulness, citation precision and retrieval recall@k on hand-worked cases."""

from __future__ import annotations

import pytest

from ragtune.errors import InputError
from ragtune.evaluate.grounding import (
    Citation,
    citation_precision,
    content_tokens,
    faithfulness,
    retrieval_recall_at_k,
)


def test_content_tokens_drop_stopwords_and_stem():
    assert content_tokens("The rockets were launched in 1994.") == ["rocket", "launch", "1994"]
    assert content_tokens("it is the one") == ["one"]
    assert content_tokens("") == []


def test_faithfulness_hand_worked():
    passages = [["The launch of the rocket happened in 1994."], ["Built in 1994 near Lyon."], [], ["x"], ["a b"]]
    answers = ["rockets launched in 1994", "Paris, 1994", "Paris", "the", "Mira Okonkwo"]
    scores = faithfulness(answers, passages)
    assert scores[0] == 1.0  # rocket, launch, 1994 all supported after stemming
    assert scores[1] == 0.5  # 1994 supported, paris not
    assert scores[2] is None  # no passages: undefined (closed-book)
    assert scores[3] is None  # no content words
    assert scores[4] == 0.0


def test_faithfulness_judge_hook_replaces_defined_scores():
    seen = {}

    def judge(answers, passages):
        seen["answers"] = list(answers)
        return [0.25 for _ in answers]

    scores = faithfulness(["rocket", "rocket"], [["rocket"], []], judge=judge)
    assert scores == [0.25, None]
    assert seen["answers"] == ["rocket"]
    with pytest.raises(InputError, match="2 answers but 1"):
        faithfulness(["a", "b"], [["a"]])


def test_citation_precision_hand_worked():
    gold_chunk = Citation("doc1", "doc1#0", "The office opens at 9.", cited=True)
    holds_answer = Citation("doc7", "doc7#2", "Staff: 17 people; the code is K-619.", cited=True)
    unrelated = Citation("doc3", "doc3#1", "Lunch is at noon.", cited=True)
    not_cited = Citation("doc1", "doc1#0", "The office opens at 9.", cited=False)
    scores = citation_precision(
        [[gold_chunk, unrelated], [holds_answer], [not_cited], [Citation("d", "d#0", "There are 17 desks.", cited=True)]],
        [["9 am"], ["K-619"], ["9"], ["7"]],
        [["doc1"], ["doc9"], ["doc1"], []],
        [["doc1#0"], ["doc9#0"], ["doc1#0"], []],
    )
    assert scores[0] == 0.5  # the gold chunk supports, the unrelated passage does not
    assert scores[1] == 1.0  # contains the gold answer string
    assert scores[2] is None  # nothing cited
    assert scores[3] == 0.0  # '7' must match as a whole token, not inside '17'


def test_citation_precision_gold_document_counts():
    same_doc_other_chunk = Citation("doc1", "doc1#5", "unrelated words", cited=True)
    assert citation_precision([[same_doc_other_chunk]], [["zzz"]], [["doc1"]], [[]]) == [1.0]


def test_retrieval_recall_at_k_hand_worked():
    hits = [Citation("d1", "d1#0", ""), Citation("d2", "d2#0", ""), Citation("d3", "d3#1", "")]
    assert retrieval_recall_at_k([hits], [["d3"]], [["d3#1", "d9#0"]]) == [0.5]  # chunk ids take precedence
    assert retrieval_recall_at_k([hits], [["d3"]], [["d3#1"]], k=2) == [0.0]  # cut at k
    assert retrieval_recall_at_k([hits], [["d2", "d3"]], [[]]) == [1.0]  # falls back to doc ids
    assert retrieval_recall_at_k([hits], [[]], [[]]) == [None]
    assert retrieval_recall_at_k([[]], [["d1"]], [[]]) == [0.0]
    with pytest.raises(InputError, match="k must be >= 1"):
        retrieval_recall_at_k([hits], [["d1"]], [[]], k=0)
