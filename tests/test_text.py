"""ragtune.text: the one sentence splitter and answer normalisation every layer shares.

The splitter replaced five job-specific copies (ingest/chunking, graph/extract, train/answer_spans, train/builders,
generate/prompts) and screening's own; the figures before and after are in the README. The digests below pin its
outputs (each job's view) over the sample corpus and the SQuAD dev sample, so any change to a cut, and so to chunks,
graph windows, synthesized questions, RAFT quotes or condensed answers, fails here and must be re-measured.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ragtune.sample import SAMPLE_DIR
from ragtune.text import (
    normalize_answer,
    sentence_spans,
    split_clauses,
    split_first_sentence,
    split_sentences,
    token_f1,
)

SQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad" / "squad-v1.1-dev-even.json"
SAMPLE_DIGEST = "94d3c2a867243f7f1afbf4747d3529f2848961e6c15a4f0bbcb4e06250d72dcd"
SQUAD_DIGEST = "c4373fb94dc5c45f870246276012586b2c11c07d4066432d8e7b22123e212546"
FUNCTIONS = [
    ("chunk", lambda t: split_sentences(" ".join(t.split()))),
    ("graph", split_clauses),
    ("spans", sentence_spans),
    ("first", split_first_sentence),
    ("norm", normalize_answer),
    ("f1", lambda t: token_f1(t[:200], t[100:300])),
]


from hypothesis import given, strategies as st  # noqa: E402


def _digest(items: list[str]) -> str:
    h = hashlib.sha256()
    for text in items:
        for name, fn in FUNCTIONS:
            h.update(repr((name, fn(text))).encode())
    return h.hexdigest()


def test_outputs_on_the_sample_corpus_are_those_of_the_original_splitters():
    items = [p.read_text(encoding="utf-8") for p in sorted(SAMPLE_DIR.rglob("*"))
             if p.suffix in {".md", ".txt", ".html", ".jsonl"}]
    assert len(items) == 54
    assert _digest(items) == SAMPLE_DIGEST


@pytest.mark.skipif(not SQUAD.exists(), reason="the shared SQuAD sample is not on this machine")
def test_outputs_on_squad_are_those_of_the_original_splitters():
    items = []
    for article in json.loads(SQUAD.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            items.append(paragraph["context"])
            for qa in paragraph["qas"]:
                items += [qa["question"]] + [a["text"] for a in qa["answers"]]
    assert len(items) == 24788
    assert _digest(items) == SQUAD_DIGEST


def test_abbreviations_and_initials_do_not_end_a_sentence_and_line_breaks_do():
    text = "Dr. Smith met C. J. Anderson, e.g. at 3 p.m. today; they talked (Smith et al. 2020). then left!\nNext line"
    assert split_sentences(text) == ["Dr. Smith met C. J. Anderson, e.g. at 3 p.m. today; they talked (Smith et al. "
                                     "2020).", "then left!", "Next line"]
    assert split_clauses(text)[:2] == ["Dr. Smith met C. J. Anderson, e.g. at 3 p.m. today;", "they talked (Smith et al. "
                                       "2020)."]
    assert split_sentences("It is in building B. Then it rained. O. Smith came.") == [
        "It is in building B.", "Then it rained.", "O. Smith came."]
    assert split_sentences('He said "Go." She went.') == ['He said "Go."', "She went."]
    assert split_first_sentence("Dr. Smith did. He left. Again.") == ["Dr. Smith did.", "He left. Again."]
    assert split_first_sentence("Just one sentence.") == ["Just one sentence."]
    assert split_sentences("  ") == [] and split_first_sentence("") == [""]


@given(st.text(alphabet=st.sampled_from(list("ab C.!?;: \n\"()")), max_size=60))
def test_sentence_spans_cover_every_character_once(text):
    """Screening removes one sentence and keeps the rest, so the spans must tile the text: in order, disjoint,
    stripped, and together holding every non-blank character (clause cuts only subdivide them)."""
    for clauses in (False, True):
        spans = sentence_spans(text, clauses=clauses)
        assert all(a < b for a, b in spans)
        assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))
        assert all(not text[a].isspace() and not text[b - 1].isspace() for a, b in spans)
        covered = {i for a, b in spans for i in range(a, b)}
        assert {i for i, ch in enumerate(text) if not ch.isspace()} <= covered


def test_answer_normalisation_and_token_f1_follow_squad():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert token_f1("", "cat") == 0.0
