"""Candidate answer spans in a chunk: dates, numbers, names, quoted terms, codes, defined terms.

Answer-first question generation starts here: a reading-comprehension answer is a short span of the passage
(SQuAD answers are mostly names, numbers, dates and short noun phrases), so we pick spans with cheap regex
heuristics and only then ask for a question about each. No tagger model is needed (none can be downloaded);
lemminflect's word lists tell common words from names at sentence starts.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ragtune.text import sentence_spans

SPAN_KINDS = ("date", "year", "number", "money", "percent", "person", "place", "entity", "quote", "code", "term")

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan\\.?|Feb\\.?|Mar\\.?|Apr\\.?|Jun\\.?|Jul\\.?|Aug\\.?|Sept?\\.?|Oct\\.?|Nov\\.?|Dec\\.?"
)
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    "seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|dozen"
)
_NUM = r"\d[\d,]*(?:\.\d+)?"
_SCALE = r"(?:\s(?:thousand|million|billion|trillion))?"

# (kind, pattern) in priority order: an earlier kind wins an overlap of equal length.
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("date", re.compile(rf"\b(?:{_MONTHS})\s\d{{1,2}}(?:st|nd|rd|th)?,?\s\d{{4}}\b")),
    ("date", re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s(?:{_MONTHS})\s\d{{4}}\b")),
    ("date", re.compile(rf"\b(?:{_MONTHS})\s(?:\d{{4}}|\d{{1,2}}(?:st|nd|rd|th)?)\b")),
    ("date", re.compile(r"\b(?:\d{1,2}(?:st|nd|rd|th)|[a-z]+(?:teenth|tieth|first|second|third|fifth|eighth|ninth|tenth|eleventh|twelfth))\s(?:century|centuries)\b")),
    ("date", re.compile(r"\b(?:January|February|March|April|June|July|August|September|October|November|December)\b|(?<=\s)May\b")),
    ("year", re.compile(r"\b(?:1[0-9]{3}|20[0-9]{2})s?\b(?![.,]?\d)")),
    ("money", re.compile(rf"[$€£¥]\s?{_NUM}(?:bn|m|k)?{_SCALE}|\b{_NUM}{_SCALE}\s(?:dollars|euros|pounds|yen)\b")),
    ("percent", re.compile(rf"\b{_NUM}\s?(?:%|percent\b|per cent\b)")),
    ("code", re.compile(r"\b[A-Z]{1,6}-\d[\w-]*\b|\b[A-Z]{2,}\d+[A-Z\d]*\b|\bv\d+(?:\.\d+)+\b")),
    ("number", re.compile(rf"\b{_NUM}(?:[–-]{_NUM})?{_SCALE}(?:\s(?:%|(?:square |cubic )?(?:km|kilometres|kilometers|miles|metres|meters|feet)|kilometers|miles|m|kg|tonnes|tons|feet|ft|metres|meters|hours|days|weeks|months|years|minutes|seconds|people|times))?\b")),
    ("number", re.compile(rf"\b(?:{_NUMBER_WORDS})(?:[- ](?:{_NUMBER_WORDS}))*{_SCALE}\b", re.IGNORECASE)),
    ("quote", re.compile(r"\"([^\"]{2,60})\"|“([^”]{2,60})”")),
]

_CONNECTORS = {"of", "the", "de", "for", "von", "van", "la", "del", "da", "di", "du", "le", "&"}
_FUNCTION_WORDS = {
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "he", "she", "his", "her", "they", "their",
    "we", "our", "you", "them", "him", "us", "me", "your", "i", "in", "on", "at", "by", "for", "from", "to", "of", "with", "as", "after",
    "before", "during", "since", "until", "while", "when", "where", "who", "which", "what", "why", "how", "if",
    "but", "and", "or", "so", "yet", "although", "though", "because", "however", "there", "here", "all", "each",
    "every", "some", "many", "most", "both", "such", "no", "not", "one", "any", "other", "another", "once", "also",
    "unlike", "like", "under", "over", "between", "among", "within", "without", "despite", "following", "according",
}
_TITLES = {"mr", "mrs", "ms", "dr", "prof", "professor", "president", "king", "queen", "pope", "saint", "st",
           "sir", "lord", "lady", "general", "captain", "emperor", "prince", "princess", "duke", "bishop", "senator",
           "governor", "chancellor", "minister", "judge", "coach", "quarterback", "ceo", "director"}
_PLACE_WORDS = {"city", "river", "county", "island", "islands", "mountains", "mountain", "ocean", "sea", "lake",
                "street", "stadium", "bay", "valley", "park", "state", "province", "kingdom", "republic", "empire",
                "coast", "desert", "region", "district", "square", "bridge", "airport", "harbour", "harbor", "hall",
                "building", "castle", "church", "cathedral", "palace", "tower", "center", "centre", "campus",
                "sound", "reach", "point", "holm", "cape", "port", "lane", "road", "avenue", "field", "hill", "ford"}
_PERSON_VERBS = {"said", "says", "wrote", "argued", "claimed", "stated", "founded", "invented", "discovered",
                 "married", "died", "born", "believed", "proposed", "designed", "painted", "composed", "ruled", "served", "studied", "announced", "who"}
_PLACE_PREPS = {"in", "at", "near", "from", "into", "across", "throughout", "to"}
_DEFINERS = re.compile(r"\b(?:called|known as|named|termed|referred to as|nicknamed|dubbed)\s+", re.IGNORECASE)
# Words, with initials and title abbreviations keeping their dot ("Dwight D. Eisenhower", "St. Johns").
_WORD = re.compile(r"(?:[A-Z]|St|Dr|Mr|Mrs|Ms|Mt|Jr|Sr)\.(?=\s[A-Z])|[\w&][\w'’.&-]*[\w]|[\w]", re.UNICODE)


@dataclass(frozen=True)
class AnswerSpan:
    """A candidate answer: chunk text[start:end], its kind, and the sentence it sits in."""

    text: str
    start: int
    end: int
    kind: str
    sentence_start: int
    sentence_end: int


def _is_common_word(word: str, text: str, run_length: int) -> bool:
    """Whether a sentence-initial capitalised word is an ordinary word rather than part of a name.

    A function word always is; a dictionary word is when it stands alone or occurs lowercased elsewhere in
    the text ("Several", "Early" vs "Super Bowl").
    """
    lower = word.lower()
    if lower in _FUNCTION_WORDS:
        return True
    from lemminflect import getAllLemmas

    readings = getAllLemmas(lower)
    if not readings or not word[1:].islower():
        return False
    if not {"NOUN", "ADJ", "PROPN"} & set(readings):
        return True  # adverbs and verbs ("Initially", "Despite") never start a name
    return run_length == 1 or re.search(rf"\b{re.escape(lower)}\b", text) is not None


def _name_spans(text: str, s_start: int, s_end: int) -> list[tuple[int, int]]:
    """Maximal runs of capitalised words (joined by 'of', 'the', 'de', ...) inside one sentence."""
    words = [(m.start() + s_start, m.end() + s_start, m.group()) for m in _WORD.finditer(text[s_start:s_end])]
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        start, end, word = words[i]
        if not word[0].isupper():
            i += 1
            continue
        j = i
        while j + 1 < len(words) and not text[words[j][1] : words[j + 1][0]].strip():
            nxt = words[j + 1][2]
            after_next = text[words[j + 1][1] : words[j + 1][1] + 1]
            if nxt[0].isupper() or (nxt.isdigit() and len(nxt) <= 3 and after_next not in "–-"):
                j += 1
            elif nxt.lower() in _CONNECTORS and j + 2 < len(words) and words[j + 2][2][0].isupper() and not text[
                words[j + 1][1] : words[j + 2][0]
            ].strip():
                j += 2
            else:
                break
        run = words[i : j + 1]
        # Drop ordinary words that are capitalised only because they open the sentence.
        while run and (run[0][2].lower() in _FUNCTION_WORDS or (run[0][0] == s_start and _is_common_word(run[0][2], text, len(run)))):
            run = run[1:]
        while run and run[-1][2].lower() in _CONNECTORS:
            run = run[:-1]
        if run:
            runs.append((run[0][0], run[-1][1]))
        i = j + 1
    return runs


def _name_kind(text: str, start: int, end: int, s_start: int) -> str:
    """person, place or entity, from the words around a capitalised run."""
    name_words = [w.lower().strip(".") for w in text[start:end].split()]
    before = [w.lower().strip(".,") for w in text[s_start:start].split()[-2:]]
    after = [w.lower().strip(".,") for w in text[end : end + 40].split()[:2]]
    if any(ch.isdigit() for ch in text[start:end]):
        return "entity"  # "Article 7", "Super Bowl 50"
    if any(w in _PLACE_WORDS for w in name_words[-1:]):
        return "place"
    if (before and before[-1] in _TITLES) or name_words[0] in _TITLES or (after and after[0] in _PERSON_VERBS) or re.match(r",\s(?:who|whose)\b", text[end : end + 8]):
        return "person"
    if before and before[-1] in _PLACE_PREPS:
        return "place"
    if re.match(r",\s[A-Z][a-z]+", text[end : end + 20]) and len(name_words) <= 3:
        return "place"  # "Santa Clara, California"
    if _looks_like_personal_name(text[start:end]):
        return "person"
    return "entity"


_ORG_WORDS = {"project", "program", "programme", "company", "group", "team", "network", "office", "bureau",
              "council", "party", "university", "institute", "act", "war", "battle", "treaty", "association",
              "society", "committee", "corporation", "foundation", "league", "club", "museum", "school", "college",
              "department", "agency", "board", "union", "army", "navy", "system", "prize", "award", "game", "bowl"}


def _looks_like_personal_name(name: str) -> bool:
    """'Hettie Brannagh', 'Robert Boyle': 2–3 capitalised words whose first is no English word."""
    from lemminflect import getAllLemmas

    words = name.split()
    if not 2 <= len(words) <= 3 or not all(re.fullmatch(r"[A-Z][a-z'’-]+|[A-Z]\.", w) for w in words):
        return False
    if words[-1].lower() in _ORG_WORDS | _PLACE_WORDS:
        return False
    if getAllLemmas(words[-1].lower().rstrip("'’")):
        return False  # "Brinewell Laboratory", "Deepwell Tank", "Denver Broncos"
    return not getAllLemmas(words[0].lower()) and words[0].lower() not in _FUNCTION_WORDS


def extract_answer_spans(text: str) -> list[AnswerSpan]:
    """Every candidate answer span in text, non-overlapping, in reading order.

    >>> [(s.text, s.kind) for s in extract_answer_spans("The game was played on February 7, 2016 in Santa Clara.")]
    [('February 7, 2016', 'date'), ('Santa Clara', 'place')]
    """
    found: list[tuple[int, int, str, int]] = []  # (start, end, kind, priority)
    for s_start, s_end in passage_sentences(text):
        sentence = text[s_start:s_end]
        for priority, (kind, pattern) in enumerate(_PATTERNS):
            for m in pattern.finditer(sentence):
                if kind == "quote":
                    group = 1 if m.group(1) is not None else 2
                    found.append((s_start + m.start(group), s_start + m.end(group), kind, priority))
                else:
                    found.append((s_start + m.start(), s_start + m.end(), kind, priority))
        for start, end in _name_spans(text, s_start, s_end):
            found.append((start, end, _name_kind(text, start, end, s_start), len(_PATTERNS)))
        for m in _DEFINERS.finditer(sentence):
            term = re.match(r"(?!after |for |by |in )(?:the |a |an )?((?:[\w'’-]+ ?){1,4}?)(?=[,.;:()]|\s(?:and|or|which|that|by|in|for|because)\b|$)", sentence[m.end():])
            if term and term.group(1).strip():
                start = s_start + m.end() + term.start(1)
                found.append((start, start + len(term.group(1).rstrip()), "term", len(_PATTERNS) + 1))
        for start, end in _noun_phrases(text, s_start, s_end):
            found.append((start, end, "term", len(_PATTERNS) + 2))
    # Longest first, then by priority; keep spans that overlap nothing already kept.
    found.sort(key=lambda f: (-(f[1] - f[0]), f[3], f[0]))
    kept: list[tuple[int, int, str, int]] = []
    for cand in found:
        if all(cand[1] <= k[0] or cand[0] >= k[1] for k in kept):
            kept.append(cand)
    sentences = passage_sentences(text)
    spans = []
    for start, end, kind, _ in sorted(kept):
        answer = re.sub(r"['’]s$", "", text[start:end].strip(" ,;:"))
        if not answer or len(answer.split()) > 8:
            continue
        if kind == "number" and answer.lower() in {"one"}:
            continue  # "one of the ..." is almost never the answer
        sentence = next((s for s in sentences if s[0] <= start < s[1]), (0, len(text)))
        spans.append(AnswerSpan(answer, start, start + len(answer), kind, sentence[0], sentence[1]))
    return spans


_LIST_MARKER = re.compile(r"(?:[-*\u2022]|\d{1,2}[.)])\s+")


def passage_sentences(text: str) -> list[tuple[int, int]]:
    """The sentences of text with a leading list marker ('- ', '* ', '3. ') left out, so a sentence starts at a word."""
    spans = []
    for start, end in sentence_spans(text):
        marker = _LIST_MARKER.match(text, start, end)
        spans.append((marker.end() if marker and marker.end() < end else start, end))
    return spans


_DETERMINERS = {"the", "a", "an", "its", "their", "his", "her", "of", "this", "these", "our"}


def _noun_phrases(text: str, s_start: int, s_end: int) -> list[tuple[int, int]]:
    """Lowercase noun phrases of 2-4 words after a determiner, ending in a noun ("the inherent difficulty")."""
    from lemminflect import getAllLemmas

    words = [(m.start() + s_start, m.end() + s_start, m.group()) for m in _WORD.finditer(text[s_start:s_end])]
    phrases = []
    for i, (_, _, word) in enumerate(words):
        if word.lower() not in _DETERMINERS:
            continue
        j = i + 1
        while j < len(words) and j - i <= 4 and not text[words[j - 1][1] : words[j][0]].strip():
            w = words[j][2]
            readings = getAllLemmas(w.lower())
            if w.lower() in _FUNCTION_WORDS or not ({"NOUN", "ADJ"} & set(readings)) or not w.islower():
                break
            if "VERB" in readings and (w.endswith("ing") or (w.endswith("ed") and "ADJ" not in readings)):
                break
            j += 1
        while j > i + 1 and "NOUN" not in getAllLemmas(words[j - 1][2].lower()):
            j -= 1
        if j - i >= 3:  # at least two content words
            phrases.append((words[i + 1][0], words[j - 1][1]))
    return phrases


_KIND_WEIGHT = {"date": 3.0, "year": 3.0, "number": 2.5, "money": 3.0, "percent": 3.0, "person": 3.0,
                "place": 3.0, "entity": 2.0, "quote": 2.0, "code": 2.0, "term": 1.0}


def choose_spans(spans: Sequence[AnswerSpan], n: int, rng: random.Random, *, keep_order: bool = True) -> list[AnswerSpan]:
    """Pick up to n spans, favouring informative kinds and spreading them over different sentences.

    keep_order=True returns them in reading order, else in the order drawn (best candidates first).
    """
    pool = list(spans)
    chosen: list[AnswerSpan] = []
    used_sentences: set[int] = set()
    used_texts: set[str] = set()
    while pool and len(chosen) < n:
        weights = [
            _KIND_WEIGHT.get(s.kind, 1.0) * (0.2 if s.sentence_start in used_sentences else 1.0) for s in pool
        ]
        pick = rng.choices(range(len(pool)), weights=weights, k=1)[0]
        span = pool.pop(pick)
        if span.text.lower() in used_texts:
            continue
        chosen.append(span)
        used_sentences.add(span.sentence_start)
        used_texts.add(span.text.lower())
    return sorted(chosen, key=lambda s: s.start) if keep_order else chosen
