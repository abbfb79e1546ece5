"""Answer-quality metrics: SQuAD v1.1 exact match and token F1, and embedding semantic similarity.

`exact_match` and `f1` (over `ragtune.text.normalize_answer` and `token_f1`) follow the official SQuAD v1.1
evaluation script (evaluate-v1.1.py) line for line: lower-case, strip ASCII punctuation, drop the articles a/an/the, collapse
whitespace; F1 over bags of tokens; the score against several gold answers is the max over them. Scores are in
[0, 1] (the official script multiplies the dataset mean by 100).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ragtune.errors import InputError
from ragtune.text import normalize_answer, token_f1  # noqa: F401  (normalize_answer: re-exported)
from ragtune.types import Embedder


def _check_golds(golds: Sequence[str]) -> None:
    if isinstance(golds, str) or len(golds) == 0:
        raise InputError(f"gold answers must be a non-empty list of strings, got {golds!r}")


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer, else 0.0."""
    _check_golds(golds)
    normalized = normalize_answer(prediction)
    return float(any(normalized == normalize_answer(gold) for gold in golds))


def f1(prediction: str, golds: Sequence[str]) -> float:
    """Token-bag F1 between the normalised prediction and each gold answer; the max over golds."""
    _check_golds(golds)
    return max(token_f1(prediction, gold) for gold in golds)


def exact_match_batch(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> list[float]:
    """`exact_match` for each (prediction, golds) pair."""
    _check_lengths(predictions, golds)
    return [exact_match(p, g) for p, g in zip(predictions, golds)]


def f1_batch(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> list[float]:
    """`f1` for each (prediction, golds) pair."""
    _check_lengths(predictions, golds)
    return [f1(p, g) for p, g in zip(predictions, golds)]


def _check_lengths(predictions: Sequence, golds: Sequence) -> None:
    if len(predictions) != len(golds):
        raise InputError(f"{len(predictions)} predictions but {len(golds)} gold answer lists")


def bundled_embedder() -> Embedder:
    """The bundled all-MiniLM-L6-v2 embedder of the index (loaded lazily; imports torch)."""
    from ragtune.index.embed import get_embedder

    return get_embedder("bundled")


def semantic_similarity(
    predictions: Sequence[str], golds: Sequence[Sequence[str]], embedder: Embedder | None = None
) -> list[float]:
    """Cosine similarity of each prediction's embedding to its closest gold answer, clipped to [0, 1].

    An empty prediction scores 0.0. Every distinct text is encoded once, in one batch.
    `embedder` defaults to the bundled MiniLM; tests inject a small fake.
    """
    _check_lengths(predictions, golds)
    for g in golds:
        _check_golds(g)
    texts = sorted({p.strip() for p in predictions if p.strip()} | {x.strip() for g in golds for x in g})
    if not texts:
        return [0.0] * len(predictions)
    encoder = embedder if embedder is not None else bundled_embedder()
    vectors = np.asarray(encoder.encode(texts), dtype=np.float32)  # (n_texts, dim)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.maximum(norms, 1e-12)  # be safe if an embedder does not normalise
    row = {text: i for i, text in enumerate(texts)}
    scores = []
    for prediction, gold_list in zip(predictions, golds):
        p = prediction.strip()
        if not p:
            scores.append(0.0)
            continue
        gold_rows = [row[g.strip()] for g in gold_list]
        cosine = vectors[gold_rows] @ vectors[row[p]]  # (n_golds,)
        scores.append(float(np.clip(cosine.max(), 0.0, 1.0)))
    return scores
