"""ragtune.text: the sentence splitters and answer normalisation every layer shares.

The splitters were five private copies (ingest/chunking, graph/extract, train/answer_spans, train/builders,
generate/prompts) that cut differently; they moved here unchanged. The digests below were computed with the five
original functions (commit 882442e) over the sample corpus and the SQuAD dev sample, so any change to a cut, and
so to chunks, graph windows, synthesized questions, RAFT quotes or condensed answers, fails here.
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
    split_sentences_before_capital,
    token_f1,
)

SQUAD = Path("/work/shared/data/squad/squad-v1.1-dev-even.json")
SAMPLE_DIGEST = "4d229c075ee4433c4f3984c739ebf5bdf00eb2269f926b30d6e7d597b16b78ca"
SQUAD_DIGEST = "34e16a82db690593184ff4fcd2b06b1a76b7d2687f88d1331a26aa25cf4f9cfe"
FUNCTIONS = [
    ("chunk", lambda t: split_sentences(" ".join(t.split()))),
    ("graph", split_clauses),
    ("spans", sentence_spans),
    ("builders", split_sentences_before_capital),
    ("first", split_first_sentence),
    ("norm", normalize_answer),
    ("f1", lambda t: token_f1(t[:200], t[100:300])),
]


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


def test_the_splitters_differ_where_their_jobs_do():
    text = "Dr. Smith met J. Doe; they talked. then 3 p.m. came.\nNext line"
    assert split_sentences(" ".join(text.split())) == ["Dr.", "Smith met J.", "Doe; they talked.", "then 3 p.m.",
                                                       "came.", "Next line"]
    assert split_clauses(text) == ["Dr.", "Smith met J.", "Doe;", "they talked.", "then 3 p.m.", "came.", "Next line"]
    assert [text[a:b] for a, b in sentence_spans(text)] == ["Dr. Smith met J. Doe; they talked. then 3 p.m. came",
                                                           "Next line"]
    assert split_sentences_before_capital(text) == ["Dr.", "Smith met J.", "Doe; they talked. then 3 p.m. came.",
                                                    "Next line"]
    assert split_first_sentence(text) == ["Dr. Smith met J. Doe; they talked. then 3 p.m. came", "Next line"]


def test_answer_normalisation_and_token_f1_follow_squad():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert token_f1("", "cat") == 0.0
