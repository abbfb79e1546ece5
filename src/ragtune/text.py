"""Plain-text helpers every layer shares: the one sentence splitter and SQuAD answer normalisation.

`sentence_spans` is the only place a text is cut into sentences; every job takes its view of the same cut:

    sentence_spans(text)              (start, end) offsets, stripped, covering every other character once:
                                      answer-span mining for synthesized questions, injection screening
    split_sentences(text)             the sentences as strings: the chunker, passage compression, the supporting
                                      quote of a RAFT example
    split_clauses(text)               the sentences further cut after ; and : (co-occurrence windows of the graph)
    split_first_sentence(answer)      [first sentence, rest] of a generated answer (condensing it)

A sentence ends at . ! ? (or a fullwidth 。！？), optionally followed by a closing quote or bracket, and
whitespace — unless the word before a full stop is an abbreviation ('Dr.', 'e.g.', 'et al.', 'p.m.') or an initial
(a capital letter after a capitalised word or before another initial: 'John F. Kennedy', 'C. J. Anderson'); a line
break always ends one. It replaced five job-specific splitters (#11); the figures measured before and after are in
the README.

`normalize_answer` and `token_f1` follow the official SQuAD v1.1 evaluation script (evaluate-v1.1.py).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter

# --- sentences ---------------------------------------------------------------------------------------------------
# A stop (with any closing quotes/brackets) and whitespace, or a line break.
_BREAK = re.compile(r"[.!?\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*[^\S\n]+|\s*\n\s*")
_INITIAL = re.compile(r"[A-Z]\.")
_CLAUSE_BREAK = re.compile(r"(?<=[;:])\s+")
_WORD_BEFORE_STOP = re.compile(r"([\w.]+)\.$")
_ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "no", "inc", "ltd", "co", "jr", "sr", "fig",
    "figs", "approx", "dept", "est", "u.s", "u.k", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec", "mt", "ft", "gen", "gov", "rev", "corp", "al", "cf", "eq", "ref", "refs", "vol", "pp",
    "ca", "resp", "a.m", "p.m", "sen", "rep", "lt", "col", "capt", "sgt",
})


def sentence_spans(text: str, clauses: bool = False) -> list[tuple[int, int]]:
    """(start, end) character offsets of the sentences of text (with `clauses`, also cut after ; and :), stripped
    of whitespace; every other character lies in exactly one span. Abbreviations and initials do not end one.

    >>> text = "Mr. Smith met John F. Kennedy and C. J. Anderson at noon. They talked in building B. Then\\n- A list item"
    >>> [text[a:b] for a, b in sentence_spans(text)]
    ['Mr. Smith met John F. Kennedy and C. J. Anderson at noon.', 'They talked in building B.', 'Then', '- A list item']
    """
    spans: list[tuple[int, int]] = []
    begin = 0
    for match in _BREAK.finditer(text):
        if "\n" not in match.group():
            stop = match.start()
            if text[stop] == "." and _no_end(text[begin : stop + 1], text[match.end() : match.end() + 3]):
                continue
            end = match.start() + len(match.group().rstrip())  # the stop and its closing quotes
        else:
            end = match.start()
        _append(text, begin, end, spans, clauses)
        begin = match.end()
    _append(text, begin, len(text), spans, clauses)
    return spans


def _no_end(sentence: str, after: str) -> bool:
    """Whether the full stop ending `sentence` belongs to an abbreviation or to an initial: a capital letter after
    a capitalised word, or before another initial ('John F. Kennedy', 'C. J. Anderson'), not 'building B. Next'."""
    words = sentence.split()
    word = _WORD_BEFORE_STOP.findall(words[-1]) if words else []
    if not word:
        return False
    if word[0].lower() in _ABBREVIATIONS:
        return True
    if len(word[0]) == 1 and word[0].isupper():
        return len(words) == 1 or words[-2][:1].isupper() or bool(_INITIAL.match(after))
    return False


def _append(text: str, start: int, end: int, spans: list[tuple[int, int]], clauses: bool) -> None:
    """Add text[start:end] (trimmed; cut at clause breaks when asked) to spans unless it is blank."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start >= end:
        return
    if not clauses:
        spans.append((start, end))
        return
    for match in _CLAUSE_BREAK.finditer(text, start, end):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, end))


def split_sentences(text: str) -> list[str]:
    """The sentences of text (`sentence_spans`) as strings.

    >>> split_sentences('He said "Go." Then he left, e.g. at 3 p.m. today.')
    ['He said "Go."', 'Then he left, e.g. at 3 p.m. today.']
    """
    return [text[a:b] for a, b in sentence_spans(text)]


def split_clauses(text: str) -> list[str]:
    """The sentences of text further cut after ; and : — co-occurrence windows for the entity graph.

    >>> split_clauses("One; two. Three\\nFour")
    ['One;', 'two.', 'Three', 'Four']
    """
    return [text[a:b] for a, b in sentence_spans(text, clauses=True)]


def split_first_sentence(answer: str) -> list[str]:
    """[first sentence, rest] of an answer, or [answer] when it is one sentence ('Dr. Who' and 'J. Smith' stay whole).

    >>> split_first_sentence("Dr. Smith did. He left.")
    ['Dr. Smith did.', 'He left.']
    """
    spans = sentence_spans(answer)
    if len(spans) < 2:
        return [answer]
    return [answer[spans[0][0] : spans[0][1]], answer[spans[1][0] :]]


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
    return bag_f1(normalize_answer(prediction).split(), normalize_answer(gold).split())


def bag_f1(prediction_tokens: list[str], gold_tokens: list[str]) -> float:
    """Token-bag F1 between two token lists (already normalised)."""
    common = Counter(prediction_tokens) & Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:  # also covers an empty prediction or gold, as the official script does
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def has_visible_text(text: str) -> bool:
    r"""True when `text` has a letter, digit, mark, punctuation or symbol: not only spaces, control, format
    (zero-width, BOM, bidi), private-use or unassigned characters, which `str.strip()` leaves in.

    >>> has_visible_text("\u200b\ufeff\x00 "), has_visible_text(" ok ")
    (False, True)
    """
    return any(unicodedata.category(ch) not in _INVISIBLE_CATEGORIES for ch in text)
