"""Choosing the sources that back an answer: explicit citations, else token-overlap fallback."""

from __future__ import annotations

from ragtune.generate.citations import choose_sources, content_words, support_scores, supporting_sources, valid_citations
from ragtune.types import Chunk, Hit


def _hits():
    texts = [
        ("berlin", "Berlin", "Berlin is the capital of Germany and its largest city."),
        ("paris", "Paris", "Paris is the capital of France, on the Seine."),
        ("eiffel", "Eiffel Tower", "The Eiffel Tower in Paris was finished in 1889 by Gustave Eiffel."),
    ]
    return [Hit(Chunk(f"{d}#0", d, text, title=title), 1.0 - i / 10, rank=i) for i, (d, title, text) in enumerate(texts)]


def test_content_words_drop_stopwords_but_never_everything():
    assert content_words("The capital of France!") == ["capital", "france"]
    assert content_words("the of") == ["the", "of"]


def test_valid_citations_drops_out_of_range_and_duplicates():
    assert valid_citations((2, 7, 0, 2, 1), 3) == (2, 1)


def test_overlap_picks_best_passage():
    hits = _hits()
    assert supporting_sources("1889", hits) == (3,)
    assert supporting_sources("Gustave Eiffel built it", hits, max_sources=2) == (3,)  # only one overlaps
    assert support_scores("Seine", hits) == [0.0, 1.0, 0.0]


def test_ties_prefer_better_rank_and_no_overlap_falls_back_to_top_hit():
    hits = _hits()
    assert supporting_sources("capital", hits) == (1,)
    assert supporting_sources("zebra", hits) == (1,)
    assert supporting_sources("", hits) == (1,)
    assert supporting_sources("anything", []) == ()


def test_choose_sources_prefers_explicit_citations():
    hits = _hits()
    assert choose_sources("Paris", (2,), hits) == ((2,), True)
    assert choose_sources("1889", (9,), hits) == ((3,), False)  # invalid number -> fallback
    assert choose_sources("1889", (), hits) == ((3,), False)
