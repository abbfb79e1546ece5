"""Which sources back an answer: the model's own [n] citations, else the passages that best support it.

Small models often cite nothing (or a number that does not exist), so the fallback ranks the retrieved
passages by how many of the answer's content words they contain; the user always sees a backing passage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragtune.types import Hit

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    "a an the of in on at to for from by with and or but is are was were be been being it its this that these "
    "those as into than then there their they he she his her him we you your i not no do does did has have had "
    "which who whom what when where why how".split()
)


def content_words(text: str) -> list[str]:
    """Lower-cased word tokens without stopwords (falls back to all words if only stopwords remain)."""
    words = [w.lower() for w in _WORD.findall(text)]
    kept = [w for w in words if w not in _STOPWORDS]
    return kept or words


def valid_citations(cited: Sequence[int], n_sources: int) -> tuple[int, ...]:
    """The cited 1-based numbers that point at an existing source, first occurrence order."""
    return tuple(dict.fromkeys(n for n in cited if 1 <= n <= n_sources))


def support_scores(answer: str, hits: Sequence[Hit]) -> list[float]:
    """Per hit, the fraction of the answer's distinct content words found in the hit's title + text."""
    answer_words = set(content_words(answer))
    if not answer_words:
        return [0.0] * len(hits)
    scores = []
    for hit in hits:
        passage = set(content_words(f"{hit.chunk.title} {hit.chunk.text}"))
        scores.append(len(answer_words & passage) / len(answer_words))
    return scores


def supporting_sources(answer: str, hits: Sequence[Hit], max_sources: int = 1) -> tuple[int, ...]:
    """1-based numbers of the hits that best support `answer` by token overlap; the top hit when none overlaps.

    >>> from ragtune.types import Chunk
    >>> hits = [Hit(Chunk("a#0", "a", "Berlin is in Germany."), 1.0), Hit(Chunk("b#0", "b", "Paris is in France."), 0.5)]
    >>> supporting_sources("Paris", hits)
    (2,)
    """
    if not hits:
        return ()
    scores = support_scores(answer, hits)
    # Stable sort: among equal overlap the better-ranked passage wins.
    ranked = sorted(range(len(hits)), key=lambda i: -scores[i])
    best = [i + 1 for i in ranked[:max_sources] if scores[i] > 0]
    return tuple(best) or (1,)


def choose_sources(answer: str, cited: Sequence[int], hits: Sequence[Hit]) -> tuple[tuple[int, ...], bool]:
    """(source numbers backing the answer, whether the model cited them itself)."""
    explicit = valid_citations(cited, len(hits))
    if explicit:
        return explicit, True
    return supporting_sources(answer, hits), False
