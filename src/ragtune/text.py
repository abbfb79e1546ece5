"""Plain-text helpers every layer shares: sentence splitting and SQuAD answer normalisation.

Sentences are cut differently for different jobs, and each cut shapes stored data (chunk boundaries, graph
co-occurrence windows, synthesized questions, RAFT quotes, condensed answers), so the variants are kept exactly
as they were measured, side by side here:

    split_sentences(paragraph)        after . ! ? (or a closing quote/bracket after them) and whitespace: the chunker,
                                      passage compression
    split_clauses(text)               also after ; : and at line breaks, stripped: entity co-occurrence windows
    sentence_spans(text)              (start, end) offsets; abbreviations and initials do not split, line breaks do,
                                      list markers are trimmed: answer-span mining for synthesized questions
    split_sentences_before_capital(text)
                                      after . ! ? only when a capital, digit, quote or bracket follows, and at line
                                      breaks: the supporting quote of a RAFT example
    split_first_sentence(answer)      the first sentence of a generated answer (titles such as 'Dr.' and initials do
                                      not end it) and the rest

`normalize_answer` and `token_f1` follow the official SQuAD v1.1 evaluation script (evaluate-v1.1.py).
"""

from __future__ import annotations

import re
import string
from collections import Counter

# --- sentences ---------------------------------------------------------------------------------------------------
# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) and whitespace.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"'\u201d\u2019)\]])\s+")
_CLAUSE_BREAK = re.compile(r"(?<=[.!?;:])\s+|\n+")
_BREAK_BEFORE_CAPITAL = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])|\n+")
_FIRST_SENTENCE_BREAK = re.compile(r"(?<![A-Z])(?<!\b(?:Dr|Mr|Ms|St|No|vs|Jr|Sr|Co))(?<!\b(?:Mrs|etc|Inc|Ltd))"
                                   r"(?<=[a-z0-9)\"'])\.\s+(?=[A-Z])")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "no", "inc", "ltd", "co",
                  "jr", "sr", "fig", "approx", "dept", "est", "u.s", "u.k", "jan", "feb", "mar", "apr", "jun",
                  "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mt", "ft", "gen", "gov", "rev", "corp"}


def split_sentences(paragraph: str) -> list[str]:
    """Sentences of a whitespace-normalised paragraph (cut after . ! ? followed by a space).

    >>> split_sentences('He said "Go." Then he left.')
    ['He said "Go."', 'Then he left.']
    """
    return [s for s in _SENTENCE_BREAK.split(paragraph) if s]


def split_clauses(text: str) -> list[str]:
    """Sentences, clauses after ; or : and lines of a text, stripped; good enough for co-occurrence windows.

    >>> split_clauses("One; two. Three\\nFour")
    ['One;', 'two.', 'Three', 'Four']
    """
    return [s for s in (p.strip() for p in _CLAUSE_BREAK.split(text)) if s]


def split_sentences_before_capital(text: str) -> list[str]:
    """Sentences cut after . ! ? only where a capital, digit, quote or bracket follows, and at line breaks; stripped.

    >>> split_sentences_before_capital("It costs 3 p.m. daily. Then more")
    ['It costs 3 p.m. daily.', 'Then more']
    """
    return [s.strip() for s in _BREAK_BEFORE_CAPITAL.split(text) if s.strip()]


def split_first_sentence(answer: str) -> list[str]:
    """[first sentence, rest] of an answer, or [answer] when it is one sentence. A full stop ends a sentence only
    after a lowercase letter, digit, bracket or quote and before a capital, so 'Dr. Who' and 'J. Smith' stay whole.

    >>> split_first_sentence("Dr. Smith did. He left.")
    ['Dr. Smith did', 'He left.']
    """
    return _FIRST_SENTENCE_BREAK.split(answer, maxsplit=1)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of the sentences of text; abbreviations and initials do not split.

    >>> text = "Mr. Smith met J. Doe. They talked."
    >>> [text[a:b] for a, b in sentence_spans(text)]
    ['Mr. Smith met J. Doe.', 'They talked.']
    """
    spans: list[tuple[int, int]] = []
    begin = 0
    for match in re.finditer(r"[.!?][\"”’)\]]*\s+(?=[\"“(\[]?[A-Z0-9])|\s*\n\s*", text):
        before = text[begin : match.start() + 1]
        if "\n" in match.group():
            if text[begin : match.start()].strip():
                spans.append(_strip(text, begin, match.start()))
            begin = match.end()
            continue
        last_word = re.findall(r"([\w.]+)\.$", before)
        if last_word and (last_word[0].lower() in _ABBREVIATIONS or len(last_word[0]) == 1):
            continue
        end = match.end()
        if text[begin:end].strip():
            spans.append(_strip(text, begin, end))
        begin = end
    if text[begin:].strip():
        spans.append(_strip(text, begin, len(text)))
    return spans


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    """Trim whitespace and a leading list marker ('- ', '* ', '3. ')."""
    marker = re.match(r"\s*(?:[-*•]|\d{1,2}[.)])\s+", text[start:end])
    if marker:
        start += marker.end()
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# --- answers -----------------------------------------------------------------------------------------------------
_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower, remove punctuation, remove articles, fix whitespace.

    >>> normalize_answer("The  Eiffel-Tower!")
    'eiffeltower'
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD v1.1 token-bag F1 between one normalised prediction and one normalised gold answer.

    >>> round(token_f1("the Eiffel tower", "Eiffel Tower in Paris"), 3)
    0.667
    """
    return _bag_f1(normalize_answer(prediction).split(), normalize_answer(gold).split())


def _bag_f1(prediction_tokens: list[str], gold_tokens: list[str]) -> float:
    common = Counter(prediction_tokens) & Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:  # also covers an empty prediction or gold, as the official script does
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)
