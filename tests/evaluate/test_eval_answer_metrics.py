"""SQuAD v1.1 EM/F1 parity (hand-worked cases + the official script's functions) and semantic similarity."""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragtune.errors import InputError
from ragtune.evaluate.answer_metrics import (
    exact_match,
    exact_match_batch,
    f1,
    f1_batch,
    normalize_answer,
    semantic_similarity,
)


# --- The official SQuAD v1.1 evaluation script's functions, verbatim apart from names (reference only). ---
def _official_normalize_answer(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def _official_f1_score(prediction, ground_truth):
    prediction_tokens = _official_normalize_answer(prediction).split()
    ground_truth_tokens = _official_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def _official_max(metric_fn, prediction, ground_truths):
    return max(metric_fn(prediction, gt) for gt in ground_truths)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Quick, Brown Fox!", "quick brown fox"),
        ("an apple a day", "apple day"),
        ("  The   theatre  ", "theatre"),  # 'the' inside a word stays
        ("Levi's Stadium", "levis stadium"),
        ("A-B", "ab"),  # punctuation is deleted, not replaced by a space
        ("1,000", "1000"),
        ("THE", ""),
        ("Théâtre", "théâtre"),  # only ASCII punctuation and case are touched
    ],
)
def test_normalize_answer_hand_worked(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    ("prediction", "golds", "em", "f1_value"),
    [
        ("the Denver Broncos", ["Denver Broncos"], 1.0, 1.0),
        ("Denver", ["Denver Broncos"], 0.0, 2 * (1 / 1) * (1 / 2) / (1 + 1 / 2)),  # P=1, R=1/2 -> 2/3
        ("Denver Broncos won", ["Denver Broncos"], 0.0, 0.8),  # P=2/3, R=1
        ("the cat sat on the mat", ["a cat sat on a hat"], 0.0, 0.75),  # 3 of 4 tokens each way
        ("paris paris", ["Paris"], 0.0, 2 / 3),  # bag overlap counts 'paris' once: P=1/2, R=1
        ("", ["Paris"], 0.0, 0.0),
        ("Santa Clara, California", ["Levi's Stadium in the San Francisco Bay Area at Santa Clara, California."],
         0.0, 6 / 14),  # 11 gold tokens: P=3/3, R=3/11 -> F1 = (6/11) / (14/11)
        ("1,000", ["1000", "one thousand"], 1.0, 1.0),
        ("four", ["4", "four years"], 0.0, 2 / 3),  # max over golds: 0 vs F1('four','four years')=2/3
        ("the", ["a"], 1.0, 0.0),  # both normalise to '', EM 1; F1 0 as in the official script
    ],
)
def test_exact_match_and_f1_hand_worked(prediction, golds, em, f1_value):
    assert exact_match(prediction, golds) == em
    assert f1(prediction, golds) == pytest.approx(f1_value)


words = st.sampled_from(["the", "a", "an", "Cat", "cat.", "dog", "Paris,", "1,000", "x-y", "AN", "theatre", "!", "é"])
phrases = st.lists(words, max_size=6).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(prediction=phrases, golds=st.lists(phrases, min_size=1, max_size=3))
def test_parity_with_the_official_script(prediction, golds):
    assert normalize_answer(prediction) == _official_normalize_answer(prediction)
    assert f1(prediction, golds) == pytest.approx(_official_max(_official_f1_score, prediction, golds))
    official_em = _official_max(lambda p, g: _official_normalize_answer(p) == _official_normalize_answer(g), prediction, golds)
    assert exact_match(prediction, golds) == float(official_em)


def test_batch_versions_and_validation():
    assert exact_match_batch(["a cat", "dog"], [["cat"], ["cow"]]) == [1.0, 0.0]
    assert f1_batch(["big cat", "dog"], [["cat"], ["cow"]]) == pytest.approx([2 / 3, 0.0])
    with pytest.raises(InputError, match="2 predictions but 1"):
        f1_batch(["a", "b"], [["a"]])
    with pytest.raises(InputError, match="non-empty list"):
        exact_match("a", "a")  # a bare string is not a list of golds
    with pytest.raises(InputError, match="non-empty list"):
        f1("a", [])


class CountingEmbedder:
    """Orthogonal one-hot vectors per distinct word set; records what it was asked to encode."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        vocab = sorted({w for t in texts for w in t.lower().split()})
        out = np.zeros((len(texts), max(len(vocab), 1)), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, vocab.index(w)] += 1.0
        return out  # not normalised on purpose: semantic_similarity must normalise


def test_semantic_similarity_values_and_one_batch():
    embedder = CountingEmbedder()
    scores = semantic_similarity(
        ["red apple", "blue sky", "", "red apple"],
        [["red apple"], ["green grass"], ["x"], ["blue car", "red car"]],
        embedder=embedder,
    )
    # identical -> 1; disjoint words -> 0; empty prediction -> 0; max over golds: cos(red apple, red car) = 1/2
    assert scores == pytest.approx([1.0, 0.0, 0.0, 0.5])
    assert len(embedder.calls) == 1  # one batch
    assert sorted(embedder.calls[0]) == sorted(set(embedder.calls[0]))  # each distinct text once


@pytest.mark.slow
def test_semantic_similarity_with_the_bundled_embedder():
    scores = semantic_similarity(
        ["Denver Broncos", "the Broncos from Denver", "a ripe banana", ""],
        [["Denver Broncos"], ["Denver Broncos"], ["Denver Broncos"], ["x"]],
    )
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    assert 0.7 < scores[1] < 1.0  # a paraphrase is close
    assert scores[2] < 0.4  # an unrelated answer is far
    assert scores[3] == 0.0
