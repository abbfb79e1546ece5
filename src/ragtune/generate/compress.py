"""Extractive context compression: retrieved passages cut down to the sentences closest to the question.

A small untuned model reads three full passages poorly (it drifts into whichever sentence it saw last); given
only the few sentences that best match the question, from the same passages, it answers far more often. On
120 SQuAD questions with hybrid top-3 hits and worked examples, the bundled 135M model's F1 went 0.132 with
full passages -> 0.218 with the 3 closest sentences (bench/bench_rag_layout.py, variant k3_best_last_sent3_few);
a RAFT adapter trained on whole passages went 0.305 -> 0.340 (k3_best_last_sent3), and prompts are 2.5x shorter.

Sentences are scored by cosine similarity of their embeddings to the question's (the index's embedder), or
by word overlap when no embedder is at hand. Kept sentences stay in their passage and in their original
order; a passage with none kept becomes empty (the prompt skips it but keeps the numbering, so citations
still map to the retrieved hits).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np

from ragtune.text import split_sentences
from ragtune.types import Embedder, Hit

DEFAULT_CONTEXT_SENTENCES = 3  # local models, at inference and in training (bench/bench_rag_layout.py)

_WORD = re.compile(r"\w+")


def compress_hits(
    questions: Sequence[str], hits_per_question: Sequence[Sequence[Hit]], keep: int, embedder: Embedder | None = None
) -> list[list[Hit]]:
    """For each question, its hits with every chunk text reduced to the `keep` sentences (over all its hits)
    closest to the question. One embedding call covers the whole batch.

    >>> from ragtune.types import Chunk
    >>> hits = [Hit(Chunk("a#0", "a", "Paris is in France. The tower is tall."), 1.0)]
    >>> [h.chunk.text for h in compress_hits(["Where is Paris?"], [hits], keep=1)[0]]
    ['Paris is in France.']
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    per_question = []
    texts: list[str] = []
    for question, hits in zip(questions, hits_per_question, strict=True):
        sentences = [(i, s) for i, hit in enumerate(hits) for s in split_sentences(" ".join(hit.chunk.text.split()))]
        per_question.append((len(texts), sentences))
        texts += [question, *(s for _, s in sentences)]
    scores = sentence_similarities(texts, per_question, embedder)
    out = []
    for (start, sentences), hits, sims in zip(per_question, hits_per_question, scores, strict=True):
        chosen = set(np.argsort(-sims, kind="stable")[:keep].tolist())
        kept = [[] for _ in hits]
        for n, (i, sentence) in enumerate(sentences):
            if n in chosen:
                kept[i].append(sentence)
        out.append([dataclasses.replace(hit, chunk=dataclasses.replace(hit.chunk, text=" ".join(parts)))
                    for hit, parts in zip(hits, kept, strict=True)])
    return out


def sentence_similarities(texts: list[str], per_question: list[tuple[int, list]], embedder: Embedder | None) -> list[np.ndarray]:
    """Per question, one score per sentence: embedding cosine, else the share of the question's words present."""
    if embedder is not None and texts:
        encode = getattr(embedder, "encode_queries", embedder.encode)  # each alone when int8: batch-free choices
        vectors = np.asarray(encode(texts), dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return [vectors[start + 1 : start + 1 + len(s)] @ vectors[start] for start, s in per_question]
    scores = []
    for start, sentences in per_question:
        asked = set(_WORD.findall(texts[start].lower()))
        scores.append(np.array([len(asked & set(_WORD.findall(s.lower()))) / max(len(asked), 1)
                                for _, s in sentences], dtype=np.float32))
    return scores
