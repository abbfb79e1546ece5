"""Context compression (sentences closest to the question) and the guided prompt style."""

from __future__ import annotations

import pytest

from ragtune.generate.compress import compress_hits
from ragtune.generate.prompts import WORKED_EXAMPLES, build_messages, format_sources
from ragtune.types import Chunk, Hit

HITS = [
    Hit(Chunk("a#0", "a", "The Danube rises in the Black Forest. It is long. Vienna lies on it.", title="Danube"), 2.0),
    Hit(Chunk("b#0", "b", "The Rhine flows into the North Sea. Basel lies on the Rhine.", title="Rhine"), 1.0, rank=1),
]


class KeywordEmbedder:
    """One dimension per keyword: texts sharing keywords with the question get cosine > 0."""

    words = ("danube", "rhine", "sea", "forest", "basel", "vienna")

    def encode(self, texts, batch_size=64):
        import numpy as np

        return np.array([[1.0 if w in t.lower() else 0.0 for w in self.words] + [0.01] for t in texts])


@pytest.mark.parametrize("embedder", [None, KeywordEmbedder()], ids=["word-overlap", "embedder"])
def test_keeps_the_closest_sentences_in_their_passages(embedder):
    (hits,) = compress_hits(["Where does the Rhine flow into the sea?"], [HITS], keep=1, embedder=embedder)
    assert [h.chunk.text for h in hits] == ["", "The Rhine flows into the North Sea."]
    assert [h.chunk.chunk_id for h in hits] == ["a#0", "b#0"] and hits[0].score == 2.0  # same hits, texts cut
    (hits,) = compress_hits(["Where does the Danube rise, in which forest?"], [HITS], keep=2, embedder=embedder)
    assert hits[0].chunk.text.startswith("The Danube rises in the Black Forest.")


def test_keeps_original_order_and_whole_passages_when_short():
    (hits,) = compress_hits(["Which city lies on the Danube, Vienna?"], [HITS], keep=10)
    assert [h.chunk.text for h in hits] == [h.chunk.text for h in HITS]


def test_batch_and_bad_keep():
    out = compress_hits(["Danube?", "Rhine?"], [HITS, HITS[1:]], keep=1, embedder=KeywordEmbedder())
    assert len(out) == 2 and len(out[1]) == 1
    with pytest.raises(ValueError):
        compress_hits(["x"], [HITS], keep=0)


def test_emptied_sources_are_skipped_but_numbers_keep_rank():
    (hits,) = compress_hits(["Where does the Rhine flow into the sea?"], [HITS], keep=1)
    text = format_sources(hits)
    assert text == "[2] Rhine: The Rhine flows into the North Sea."


def test_worked_examples_precede_the_question():
    rag = build_messages("Who?", HITS, examples=True)
    assert [m["role"] for m in rag] == ["system"] + ["user", "assistant"] * len(WORKED_EXAMPLES) + ["user"]
    assert rag[2]["content"] == f"{WORKED_EXAMPLES[0][3]} [1]" and rag[-1]["content"].endswith("Question: Who?")
    closed = build_messages("Who?", None, examples=True)
    assert closed[1] == {"role": "user", "content": f"Question: {WORKED_EXAMPLES[0][2]}"}
    assert closed[2] == {"role": "assistant", "content": WORKED_EXAMPLES[0][3]}
    assert "Sources" not in "".join(m["content"] for m in closed)
    assert build_messages("Who?", None) == build_messages("Who?", None, examples=False)
