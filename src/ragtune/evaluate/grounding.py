"""Grounding metrics: faithfulness of an answer to its passages, citation precision, retrieval recall@k.

Faithfulness (offline, no judge model): the fraction of the answer's *content tokens* that occur in the
passages it is judged against (in a compare run: the sources in the row's citations — the cited passages, or
the best-supporting retrieved one when the answer cites none). Both sides are normalised the same way (SQuAD normalisation, English stopwords removed,
Snowball-stemmed with PyStemmer), so "launched in 1994" is fully supported by a passage saying "the launch,
in 1994, ...". It measures lexical support: it cannot see a paraphrase with new words as supported, and it
cannot catch a wrong relation built from supported words. A stronger check plugs in through `judge`.

All functions are batch-first and return `None` for a question where the metric is undefined (no passages,
nothing cited, no gold ids); aggregates take the mean over the defined values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from ragtune.text import normalize_answer
from ragtune.errors import InputError

# The NLTK English stopword list (no negations removed), normalised like answers are.
STOPWORDS = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers
    herself it its itself they them their theirs themselves what which who whom this that these those am is are
    was were be been being have has had having do does did doing a an the and but if or because as until while
    of at by for with about against between into through during before after above below to from up down in out
    on off over under again further then once here there when where why how all any both each few more most
    other some such no nor not only own same so than too very s t can will just don should now d ll m o re ve y
    ain aren couldn didn doesn hadn hasn haven isn ma mightn mustn needn shan shouldn wasn weren won wouldn""".split()
)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer, a core dependency (bm25s uses it too)

    return Stemmer.Stemmer("english")


def content_tokens(text: str) -> list[str]:
    """Normalised, stopword-free, stemmed tokens of a text.

    >>> content_tokens("The rockets were launched in 1994.")
    ['rocket', 'launch', '1994']
    """
    words = [w for w in normalize_answer(text).split() if w not in STOPWORDS]
    return list(_stemmer().stemWords(words)) if words else []


class FaithfulnessJudge(Protocol):
    """An optional stronger judge (e.g. an LLM behind an endpoint): a support score in [0, 1] per answer."""

    def __call__(self, answers: Sequence[str], passages: Sequence[Sequence[str]]) -> list[float]: ...


def faithfulness(
    answers: Sequence[str], passages: Sequence[Sequence[str]], judge: FaithfulnessJudge | None = None
) -> list[float | None]:
    """Fraction of each answer's content tokens found in its passages (None without passages or content).

    With `judge`, the judge's scores are returned instead for the answers that have passages.
    """
    if len(answers) != len(passages):
        raise InputError(f"{len(answers)} answers but {len(passages)} passage lists")
    scores: list[float | None] = []
    passage_tokens: dict[str, frozenset[str]] = {}  # arms sharing a retriever see the same passages: stem once
    for answer, texts in zip(answers, passages):
        tokens = content_tokens(answer)
        if not texts or not tokens:
            scores.append(None)
            continue
        for text in texts:
            if text not in passage_tokens:
                passage_tokens[text] = frozenset(content_tokens(text))
        support = frozenset().union(*(passage_tokens[text] for text in texts))
        scores.append(sum(t in support for t in tokens) / len(tokens))
    if judge is not None:
        defined = [i for i, s in enumerate(scores) if s is not None]
        judged = judge([answers[i] for i in defined], [passages[i] for i in defined])
        for i, value in zip(defined, judged):
            scores[i] = float(value)
    return scores


@dataclass(frozen=True)
class Citation:
    """One passage an arm saw (row contract of predictions.jsonl), reduced to what the metrics need."""

    doc_id: str
    chunk_id: str
    text: str
    cited: bool = False


def citation_supported(citation: Citation, golds: Sequence[str], gold_doc_ids: Sequence[str],
                       gold_chunk_ids: Sequence[str]) -> bool:
    """A passage supports the answer when it is a gold chunk/document or contains a gold answer string."""
    if citation.chunk_id and citation.chunk_id in gold_chunk_ids:
        return True
    if citation.doc_id and citation.doc_id in gold_doc_ids:
        return True
    text = f" {normalize_answer(citation.text)} "
    return any(normalize_answer(g) and f" {normalize_answer(g)} " in text for g in golds)


def citation_precision(
    citations: Sequence[Sequence[Citation]],
    golds: Sequence[Sequence[str]],
    gold_doc_ids: Sequence[Sequence[str]],
    gold_chunk_ids: Sequence[Sequence[str]],
) -> list[float | None]:
    """Of the passages each answer cites, the fraction that support it (None when nothing is cited)."""
    if not (len(citations) == len(golds) == len(gold_doc_ids) == len(gold_chunk_ids)):
        raise InputError(
            f"lengths differ: {len(citations)} citation lists, {len(golds)} gold lists, "
            f"{len(gold_doc_ids)} gold doc lists, {len(gold_chunk_ids)} gold chunk lists"
        )
    scores: list[float | None] = []
    for cites, gold, docs, chunks in zip(citations, golds, gold_doc_ids, gold_chunk_ids):
        cited = [c for c in cites if c.cited]
        if not cited:
            scores.append(None)
            continue
        scores.append(sum(citation_supported(c, gold, docs, chunks) for c in cited) / len(cited))
    return scores


def retrieval_recall_at_k(
    retrieved: Sequence[Sequence[Citation]],
    gold_doc_ids: Sequence[Sequence[str]],
    gold_chunk_ids: Sequence[Sequence[str]],
    k: int | None = None,
) -> list[float | None]:
    """Fraction of the gold passages found among the top-k retrieved ones (None without gold ids).

    Gold chunk ids are used when known, else gold document ids. `k=None` uses every retrieved passage.
    """
    if k is not None and k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    if not (len(retrieved) == len(gold_doc_ids) == len(gold_chunk_ids)):
        raise InputError(
            f"lengths differ: {len(retrieved)} retrieved lists, {len(gold_doc_ids)} gold doc lists, "
            f"{len(gold_chunk_ids)} gold chunk lists"
        )
    scores: list[float | None] = []
    for hits, docs, chunks in zip(retrieved, gold_doc_ids, gold_chunk_ids):
        top = list(hits)[:k] if k is not None else list(hits)
        if chunks:
            found = {h.chunk_id for h in top}
            gold = set(chunks)
        elif docs:
            found = {h.doc_id for h in top}
            gold = set(docs)
        else:
            scores.append(None)
            continue
        scores.append(len(gold & found) / len(gold))
    return scores
