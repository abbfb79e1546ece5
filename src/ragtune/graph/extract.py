"""Offline entity extraction: capitalised names, codes, acronyms and quoted terms, with alias merging.

A fast rule-based extractor (no model, no download) so a graph index builds at BM25 speed. Entities are
keyed by a normal form (case, possessives, a leading "the", titles and generic prefixes removed); within a
document a lone surname or a lone code ("Dunmore", "SILTLINE") is merged into the longer name it abbreviates,
and across the corpus acronyms are merged with names whose initials they spell (see `alias_map`).
Relations are co-occurrences: two entities in one sentence (strong) or one chunk (weak).

>>> [m.key for m in extract_chunk_mentions(["Project SILTLINE is run by the Sediment Dynamics Group."])[0]]
['siltline', 'sediment dynamics group']
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ragtune.text import split_clauses

# Capitalised words that start sentences or name dates rather than things.
_STOP = frozenset("""
a an the this that these those there their they them then than it its is are was were be been being he she we
you i my our your his her in on at by for from to of and or but nor if when while where which who whom whose
what why how each every all any some no not none both either neither most many much more less few one two
three four five six seven eight nine ten after before during since until within without about above below
over under into onto upon also however therefore thus yes as so do does did can could may might must shall
should will would have has had let here please note see use new other such same per via only just even
january february march april may june july august september october november december monday tuesday
wednesday thursday friday saturday sunday today tomorrow yesterday mr mrs ms dr prof sir madam st
""".split())
# Verbs and adverbs that often open a sentence in front of a name ("Ask Dunmore", "Later Hale left").
_STARTERS = frozenset("""
ask later contact call send email visit book read check find bring take keep make go get give write submit report
tell speak talk meet join follow like unlike whereas although though because once now first next finally
""".split())
# Titles and generic heads dropped from the front of a name's key ("Dr Maren Okonkwo-Lisle", "Project SILTLINE").
_PREFIXES = frozenset({"the", "dr", "prof", "professor", "mr", "mrs", "ms", "sir", "project", "programme", "program"})
_CONNECTORS = frozenset({"of", "the", "de", "la", "du", "von", "van", "del", "der", "for", "on", "&"})
_WORD = re.compile(r"[^\W_][\w'’.\-]*[^\W_]|[^\W_]", re.UNICODE)
_ELISION = re.compile(r"^[^\W\d_]{1,2}['’](?=\w)", re.UNICODE)  # French/Italian elision: l', d'
_QUOTED = re.compile(r"[\"“«]([^\"”»\n]{2,60})[\"”»]")
_CODE = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9]+(?:[-/][A-Za-z0-9]+)+$|^[A-Z]{1,6}\d+[A-Za-z0-9]*$")
MAX_NAME_TOKENS = 6


@dataclass(frozen=True)
class Mention:
    """One entity mention: its merge key, the surface text and the sentence of the chunk it sits in."""

    key: str
    surface: str
    sentence: int


def normalize_name(surface: str) -> str:
    """The merge key of a name: NFKC, lower case, no possessive, no leading article/title/generic prefix.

    >>> normalize_name("The Kelp Ecology Team's")
    'kelp ecology team'
    """
    text = unicodedata.normalize("NFKC", surface).replace("’", "'").lower()
    text = re.sub(r"'s\b|(?<=s)'(?=\s|$)", "", text)
    tokens = [t.strip(".,;:'\"()[]") for t in text.split()]
    tokens = [t for t in tokens if t]
    while len(tokens) > 1 and tokens[0] in _PREFIXES:
        tokens = tokens[1:]
    return " ".join(tokens)


def _is_capitalised(token: str) -> bool:
    first = token[0]
    return first.isupper() or (first.isdigit() and any(ch.isupper() for ch in token))


def _is_code(token: str) -> bool:
    """Acronyms and codes: 'HB-7', 'SILTLINE', 'R2', 'ISO-27001' (not plain numbers)."""
    core = token.strip(".-")
    if len(core) < 2:
        return False
    if _CODE.match(core):
        return True
    letters = [ch for ch in core if ch.isalpha()]
    return len(letters) >= 2 and all(ch.isupper() for ch in letters)


def _sentence_mentions(sentence: str, index: int, common: frozenset[str] = frozenset(),
                       known: frozenset[str] = frozenset(), mid_only: bool = False) -> list[Mention]:
    tokens = [_ELISION.sub("", m.group(0).rstrip(".")) for m in _WORD.finditer(sentence)]
    out: list[Mention] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token or not _is_capitalised(token):
            i += 1
            continue
        run = [token]
        j = i + 1
        while j < len(tokens) and len(run) < MAX_NAME_TOKENS:
            nxt = tokens[j]
            if nxt and _is_capitalised(nxt):
                run.append(nxt)
                j += 1
            elif nxt.lower() in _CONNECTORS and j + 1 < len(tokens) and tokens[j + 1] and _is_capitalised(tokens[j + 1]):
                run.append(nxt)
                j += 1
            else:
                break
        start = i
        while run and (run[0].lower() in _STOP or run[0].lower() in _CONNECTORS):  # "The Kelp Ecology Team"
            run, start = run[1:], start + 1
        if (start == 0 and len(run) > 1 and normalize_name(" ".join(run)) not in known
                and (run[0].lower() in _STARTERS or run[0].lower() in common)):
            run, start = run[1:], start + 1  # "Ask Dunmore": a common word that is capitalised only as opener
            while run and run[0].lower() in _CONNECTORS:  # "Landing on Skelly Holm"
                run, start = run[1:], start + 1
        while run and run[-1].lower() in _CONNECTORS:
            run = run[:-1]
        at_start = start == 0  # a lone capitalised first word is usually just the start of a sentence
        keep = bool(run) and (len(run) > 1 or _is_code(run[0]) or not at_start) and not (mid_only and at_start)
        if keep and len(run) == 1 and run[0].lower() in _STOP:
            keep = False
        if keep:
            surface = " ".join(run)
            key = normalize_name(surface)
            if key and key not in _STOP and not key.isdigit():
                out.append(Mention(key, surface, index))
        i = j
    for match in _QUOTED.finditer(sentence):
        words = match.group(1).split()
        if 1 <= len(words) <= 5:
            key = normalize_name(match.group(1))
            if key and key not in _STOP:
                out.append(Mention(key, match.group(1).strip(), index))
    return out


def lowercase_words(texts: Sequence[str]) -> frozenset[str]:
    """Words the texts use in lower case: a capitalised sentence opener among them is not a name."""
    return frozenset(w for text in texts for w in _WORD.findall(text or "") if w[0].islower())


def extract_chunk_mentions(texts: Sequence[str], common: frozenset[str] = frozenset(),
                           known: frozenset[str] = frozenset()) -> list[list[Mention]]:
    """Mentions per text (batch-first), sentence-indexed, in order; no alias merging.

    `common`: words known in lower case (see `lowercase_words`), dropped when they open a sentence-initial
    name — unless that whole name is in `known` (names seen elsewhere, e.g. "Kelp Ecology Team")."""
    out = []
    for text in texts:
        mentions: list[Mention] = []
        for s_index, sentence in enumerate(split_clauses(text or "")):
            mentions.extend(_sentence_mentions(sentence, s_index, common, known))
        out.append(mentions)
    return out


def merge_document_aliases(per_chunk: list[list[Mention]]) -> list[list[Mention]]:
    """Within one document, map a one-word key that is the first or last word of exactly one longer name
    ("Dunmore" → "rafferty dunmore", "Okonkwo-Lisle" → "maren okonkwo-lisle") onto that name."""
    long_keys = {m.key for chunk in per_chunk for m in chunk if " " in m.key}
    by_word: dict[str, set[str]] = {}
    for key in long_keys:
        words = key.split()
        for word in (words[0], words[-1]):
            if word not in _STOP:
                by_word.setdefault(word, set()).add(key)
    out = []
    for chunk in per_chunk:
        merged = []
        for m in chunk:
            targets = by_word.get(m.key) if " " not in m.key else None
            if targets and len(targets) == 1:
                m = Mention(next(iter(targets)), m.surface, m.sentence)
            merged.append(m)
        out.append(merged)
    return out


def extract_document(chunk_texts: Sequence[str]) -> list[list[Mention]]:
    """Mentions for the chunks of one document, with in-document aliases merged."""
    known = frozenset(  # multi-word names used mid-sentence somewhere in the document
        m.key for text in chunk_texts for sentence in split_clauses(text or "")
        for m in _sentence_mentions(sentence, 0, mid_only=True) if " " in m.key
    )
    return merge_document_aliases(extract_chunk_mentions(chunk_texts, lowercase_words(chunk_texts), known))


def initials(key: str) -> str:
    """'marrowgate institute of ocean science' → 'mios' (connectors skipped)."""
    return "".join(w[0] for w in key.split() if w not in _CONNECTORS and w)


def alias_map(keys: Iterable[str], counts: Counter | None = None) -> dict[str, str]:
    """Corpus-level aliases: an acronym key whose letters are the initials of exactly one multi-word key maps
    onto it ('hbn' → 'hollow buoy network'). Returns {alias: canonical}; keys not listed map to themselves."""
    keys = set(keys)
    by_initials: dict[str, list[str]] = {}
    for key in keys:
        words = [w for w in key.split() if w not in _CONNECTORS]
        if len(words) >= 2:
            by_initials.setdefault(initials(key), []).append(key)
    out = {}
    for key in keys:
        if " " in key or not key.isalpha() or not (2 <= len(key) <= 6):
            continue
        targets = [t for t in by_initials.get(key, []) if t != key]
        if len(targets) == 1:
            out[key] = targets[0]
    return out
