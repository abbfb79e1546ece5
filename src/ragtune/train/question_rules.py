"""Rule-based wh-questions from (sentence, answer span): the answer is replaced by a wh-word chosen by its kind.

"The game was played on February 7, 2016, at Levi's Stadium." + "February 7, 2016" → "When was the game played?"
The sentence is cut to the clause holding the answer, parentheticals dropped, the auxiliary fronted (or
do-support added, with lemminflect for the verb's base form), and a preposition the wh-word absorbs ("on" for
When, "in" for Where) removed. Only clean shapes are turned into questions — the answer as the subject, or as
the object/adjunct right after the verb — anything else returns None and the caller tries another span.
The questions reuse the sentence's words, as SQuAD's human questions mostly do.
"""

from __future__ import annotations

import re

from ragtune.train.answer_spans import _FUNCTION_WORDS, AnswerSpan

_AUX = {"is", "are", "was", "were", "has", "have", "had", "can", "could", "will", "would", "shall", "should",
        "may", "might", "must", "does", "do", "did"}
_INTRO = {"as", "when", "after", "although", "because", "since", "while", "however", "though", "if", "despite",
          "during", "following", "before", "once", "unlike", "in", "on", "at", "by", "for", "from", "with", "under",
          "between", "over", "throughout", "additionally", "moreover", "furthermore", "today", "later", "meanwhile",
          "also", "thus", "therefore", "instead", "nevertheless", "originally", "eventually", "finally", "then",
          "according", "like", "until", "upon", "within", "whereas", "unlike", "along", "among", "without"}
_ABSORBED = {
    "When": {"on", "in", "at", "during", "since", "by", "around", "from", "until"},
    "In what year": {"in"},
    "Where": {"in", "at", "near", "on", "into", "throughout", "inside"},
}
_PREPOSITIONS = {"in", "on", "at", "by", "for", "from", "to", "of", "with", "into", "during", "near", "about",
                 "against", "between", "under", "over", "through", "across", "as", "than", "via", "within",
                 "around", "among", "after", "before", "since", "until", "throughout", "toward", "towards"}
_DETERMINERS = {"the", "a", "an", "its", "their", "his", "her", "our", "this", "these", "that", "those"}
_TAIL_BREAKS = re.compile(r",|;|\s(?:because|although|though|while|whereas|even though|so that)\s")
_CLAUSE_WORDS = {"which", "where", "who", "whom", "whose", "that", "when", "while", "and", "or", "but", "if"}
_EMPTY_QUOTES = re.compile(r"[\"“”'‘’]\s*[\"“”'‘’]")
_WORD = re.compile(r"\S+")


def wh_word(span: AnswerSpan, preceding_word: str) -> str:
    """The wh-phrase for an answer of span.kind ('How many' may be extended by the counted noun later)."""
    kind = span.kind
    if kind == "date":
        return "When"
    if kind == "year":
        return "In what year" if preceding_word == "in" else "When"
    if kind == "money":
        return "How much"
    if kind == "percent":
        return "What percentage"
    if kind == "number":
        plain = re.fullmatch(r"[\d,.]+(?:\s(?:thousand|million|billion))?|[a-zA-Z]+(?:[- ][a-zA-Z]+)*", span.text)
        return "How many" if plain else "What"
    if kind == "person":
        return "Who"
    if kind == "place" and preceding_word in _ABSORBED["Where"]:
        return "Where"
    return "What"


def _readings(word: str) -> dict[str, tuple[str, ...]]:
    from lemminflect import getAllLemmas

    return getAllLemmas(word.lower().strip(",;:\"“”"))


def _verb_form(word: str) -> str | None:
    """'aux', 'VBD' or 'VBZ' when word is a finite verb (unambiguously, by lemminflect's lexicon), else None."""
    from lemminflect import getInflection

    lower = word.lower().strip(",;:\"“”")
    if lower in _AUX:
        return "aux"
    readings = _readings(lower)
    if "VERB" not in readings or lower in _FUNCTION_WORDS or "NOUN" in readings or "ADJ" in readings:
        return None
    lemma = readings["VERB"][0]
    if lower != lemma and lower in getInflection(lemma, "VBD"):
        return "VBD"
    if lower != lemma and lower in getInflection(lemma, "VBZ"):
        return "VBZ"
    return None


def _is_modifier(word: str) -> bool:
    """A word that may sit between a determiner and the answer ('the NFC champion [Carolina Panthers]')."""
    lower = word.lower()
    if lower in _PREPOSITIONS or lower in _AUX or lower in {"and", "or", "but", "that", "which", "who"}:
        return False
    return word[-1] not in ",;:()" and _verb_form(word) is None


def _drop_parentheticals(sentence: str, a: int, b: int) -> tuple[str, int, int] | None:
    """Remove '(...)' groups not holding the answer, shifting the answer offsets; None if the answer is in one."""
    out, shift_a, last = [], 0, 0
    for m in re.finditer(r"\s*\([^()]*\)", sentence):
        if m.start() < b and a < m.end():
            return None
        out.append(sentence[last : m.start()])
        last = m.end()
        if m.end() <= a:
            shift_a += m.end() - m.start()
    out.append(sentence[last:])
    return "".join(out), a - shift_a, b - shift_a


def _clause(sentence: str, a: int, b: int) -> tuple[int, int] | None:
    """Bounds of the comma/semicolon segment holding the answer, widened left over a leading introducer."""
    cuts = [m for m in re.finditer(r"[,;:]\s+(?!\d)|\s[–—]\s", sentence) if not a <= m.start() < b]
    starts = [0] + [m.end() for m in cuts]
    ends = [m.start() for m in cuts] + [len(sentence)]
    for s, e in zip(starts, ends):
        if s <= a and b <= e:
            return s, e
    return None


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    return first.lower() + text[len(first):] if first.lower() in _FUNCTION_WORDS else text


def _finish(question: str) -> str | None:
    question = re.sub(r"\s+", " ", question).strip(" ,;:.!")
    question = re.sub(r"\s+([,;:.)?])", r"\1", question)
    words = question.split()
    if len(words) < 5 or len(words) > 30 or _EMPTY_QUOTES.search(question) or question.count("(") != question.count(")") or '"' in question[:-1] and question.count('"') % 2:
        return None
    return question[:1].upper() + question[1:] + "?"


def rule_question(text: str, span: AnswerSpan) -> str | None:
    """A wh-question about span built from its sentence, or None when the sentence has no clean shape for one.

    >>> from ragtune.train.answer_spans import extract_answer_spans
    >>> t = "The game was played on February 7, 2016, at Levi's Stadium."
    >>> rule_question(t, next(s for s in extract_answer_spans(t) if s.kind == "date"))
    'When was the game played?'
    """
    sentence = text[span.sentence_start : span.sentence_end].rstrip(".!?")
    cleaned = _drop_parentheticals(sentence, span.start - span.sentence_start, span.end - span.sentence_start)
    if cleaned is None:
        return None
    sentence, a, b = cleaned
    bounds = _clause(sentence, a, b)
    if bounds is None:
        return None
    cs, ce = bounds
    clause = sentence[cs:ce]
    a, b = a - cs, b - cs
    before = [m for m in _WORD.finditer(clause[:a])]
    after_text = clause[b:]
    # A clause opening with an introducer ("In 1066", "As this was ...") has no subject of its own here.
    if before and before[0].group().lower() in _INTRO:
        return None
    preceding = before[-1].group().lower() if before else ""
    wh = wh_word(span, preceding)
    verb_index = next((i for i, m in enumerate(before) if i > 0 and _verb_form(m.group())), None)

    if verb_index is None:
        return _subject_question(span, wh, before, after_text)

    verb = before[verb_index].group()
    form = _verb_form(verb)
    subject = _lower_first(clause[: before[verb_index].start()].strip())
    if not _clean_subject(subject) or re.match(r"['’]s\b", after_text):
        return None
    head = [m.group() for m in before[verb_index + 1 :]]
    # head = [verb-ish words] [object NP] [preposition] [determiner + modifiers] answer
    stranded = ""
    modifiers: list[str] = []
    det = next((i for i in range(len(head) - 1, -1, -1) if head[i].lower() in _DETERMINERS), None)
    if det is not None and all(_is_modifier(w) for w in head[det + 1 :]):
        modifiers, head = head[det + 1 :], head[:det]
    if head and head[-1].lower() in _PREPOSITIONS:
        prep = head.pop().lower()
        if prep not in _ABSORBED.get(wh, set()):
            stranded = prep
    elif wh in {"When", "Where", "In what year"}:
        return None  # "Where" needs its preposition ("in Paris"); a bare object is a "What"
    if any(_verb_form(w) == "aux" or w.lower() in _CLAUSE_WORDS | _PREPOSITIONS for w in head):
        return None  # the answer sits in an embedded clause or a second prepositional phrase
    if modifiers:
        last = modifiers[-1]
        if wh not in {"What", "Who"} or not (last[:1].isupper() or "NOUN" in _readings(last)):
            return None
        wh = "Which " + " ".join(modifiers)
    tail = _TAIL_BREAKS.split(after_text, maxsplit=1)[0]
    tail_words = tail.split()
    if stranded and (tail_words or stranded == "of" or wh.startswith("How")):
        return None  # "What was X the champion of __ for the season" reads badly
    if wh == "How many" and tail_words and tail_words[0] == "of":
        return None  # partitive: "two of the six packages"
    if wh == "How many" and tail_words and re.fullmatch(r"[a-z]+", tail_words[0]) and "NOUN" in _readings(tail_words[0]):
        wh = f"How many {tail_words.pop(0)}"
    elif tail_words and tail_words[0][:1].islower() and tail_words[0].lower() not in _PREPOSITIONS | {"to"} and _verb_form(tail_words[0]) is None:
        return None  # the answer is part of a longer phrase ("an [American] football game")
    rest = " ".join(head + tail_words + ([stranded] if stranded else []))
    if form == "aux":
        body = f"{verb.lower()} {subject} {rest}"
    else:
        lemma = _readings(verb)["VERB"][0]
        body = f"{'did' if form == 'VBD' else 'does'} {subject} {lemma} {rest}"
    return _finish(f"{wh} {body}") if subject else None


def _clean_subject(subject: str) -> bool:
    """A plain noun phrase: no clause words, auxiliaries or past-tense verbs inside it."""
    from lemminflect import getInflection

    words = [w.lower().strip(",;:\"“”") for w in subject.split()]
    if not words or words[0] in _CLAUSE_WORDS:
        return False
    for w in words:
        if w in _CLAUSE_WORDS or w in _AUX:
            return False
        verb = _readings(w).get("VERB")
        if verb and w != verb[0] and w in getInflection(verb[0], "VBD"):
            return False
    return True


def _subject_question(span: AnswerSpan, wh: str, before: list[re.Match[str]], after_text: str) -> str | None:
    """The answer is the clause's subject: 'Who defeated the Carolina Panthers 24–10?'."""
    if wh in {"When", "Where", "In what year"}:
        return None
    if before and (before[0].group().lower() not in _DETERMINERS or not all(_is_modifier(m.group()) for m in before[1:])):
        return None
    after = list(_WORD.finditer(after_text))
    if not after or not _verb_form(after[0].group()):
        return None  # something sits between the answer and its verb: not the whole subject
    if wh == "What" and span.kind in {"entity", "person"} and span.text.endswith("s") and span.text[0].isupper():
        wh = "Who"  # plural groups: teams, peoples
    tail = _TAIL_BREAKS.split(after_text, maxsplit=1)[0]
    return _finish(f"{wh} {tail}")
