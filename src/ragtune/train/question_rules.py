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
          "according", "like", "until", "upon", "within", "whereas", "along", "among", "without"}
_ABSORBED = {
    "When": {"on", "in", "at", "during", "since", "by", "around", "from", "until", "every", "each"},
    "In what year": {"in"},
    "In what decade": {"in"},
    "Where": {"in", "at", "near", "on", "into", "throughout", "inside"},
}
_PREPOSITIONS = {"in", "on", "at", "by", "for", "from", "to", "of", "with", "into", "during", "near", "about",
                 "against", "between", "under", "over", "through", "across", "as", "than", "via", "within",
                 "around", "among", "after", "before", "since", "until", "throughout", "toward", "towards"}
_FRONTABLE = {"within", "for", "after", "in", "during", "under", "over", "at", "with", "from", "to"}
_APPROXIMATORS = {"about", "around", "nearly", "almost", "approximately", "roughly", "over", "some", "only", "exactly"}
_SUBJECT_BREAKERS = {"also", "not", "never", "always", "often", "still", "usually", "only", "then", "now"}
_DETERMINERS = {"the", "a", "an", "its", "their", "his", "her", "our", "this", "these", "that", "those"}
_TAIL_BREAKS = re.compile(r",|;|\s(?:because|although|though|while|whereas|even though|so that|however)\s|\sand\s(?=(?:\w+ly\s|never\s|also\s|then\s|later\s)?\w+ed\b)")
_CLAUSE_WORDS = {"which", "where", "who", "whom", "whose", "that", "when", "while", "and", "or", "but", "if"}
_EMPTY_QUOTES = re.compile(r"[\"“”'‘’]\s*[\"“”'‘’]")
_WORD = re.compile(r"\S+")


def wh_word(span: AnswerSpan, preceding_word: str) -> str:
    """The wh-phrase for an answer of span.kind ('How many' may be extended by the counted noun later)."""
    kind = span.kind
    if kind == "date":
        return "When"
    if kind == "year":
        if span.text.endswith("s"):
            return "In what decade" if preceding_word == "in" else "When"
        return "In what year" if preceding_word == "in" else "When"
    if kind == "money":
        return "How much"
    if kind == "percent":
        return "What percentage"
    if kind == "number":
        unit = re.fullmatch(r"[\d,.]+(?:\s(?:thousand|million|billion))?\s((?:square |cubic )?[a-z]+)", span.text)
        if unit and unit.group(1) not in {"m", "ft", "km", "kg"}:
            return f"How many {unit.group(1)}"
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
    return word[-1] not in ",;:()'’\"" and _verb_form(word) is None


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


def _lower_first(text: str, context: str = "") -> str:
    """Lower-case a sentence-initial ordinary word ("The game", "Raw data") but not a name ("Sky", "Super Bowl").

    An ordinary word is a function word, or a dictionary word that the context never capitalises mid-sentence.
    """
    first = text.split(" ", 1)[0]
    ordinary = first.lower() in _FUNCTION_WORDS or (
        first[1:].islower() and bool(_readings(first)) and re.search(rf"[a-z,;]\s+{re.escape(first)}\b", context) is None
    )
    return first.lower() + text[len(first):] if ordinary else text


def _finish(question: str) -> str | None:
    question = re.sub(r"\s+", " ", question).strip(" ,;:.!")
    question = re.sub(r"\s+([,;:.)?])", r"\1", question)
    words = question.split()
    if words and words[-1].lower() in _AUX | _DETERMINERS | _CLAUSE_WORDS:
        return None
    if re.search(r"\.\s|\[|\]|\w['’](?:\s|$)", question):
        return None  # a sentence break or a citation mark inside: the clause was not cut cleanly
    if len(words) < 4 or len(words) > 30 or _EMPTY_QUOTES.search(question) or question.count("(") != question.count(")") or '"' in question[:-1] and question.count('"') % 2:
        return None
    return question[:1].upper() + question[1:] + "?"


def rule_question(text: str, span: AnswerSpan) -> str | None:
    """A wh-question about span built from its sentence, or None when the sentence has no clean shape for one.

    >>> from ragtune.train.answer_spans import extract_answer_spans
    >>> t = "The game was played on February 7, 2016, at Levi's Stadium."
    >>> rule_question(t, next(s for s in extract_answer_spans(t) if s.kind == "date"))
    'When was the game played?'
    """
    cleaned = answer_sentence(text, span)
    if cleaned is None:
        return None
    sentence, a, b = cleaned
    return _clause_question(span, sentence, a, b, text) or _appositive_question(span, sentence, a, b)


def answer_sentence(text: str, span: AnswerSpan) -> tuple[str, int, int] | None:
    """span's sentence without its end mark and the parentheticals not holding the answer, with the answer's
    offsets in it; None when the answer sits inside a parenthetical."""
    sentence = text[span.sentence_start : span.sentence_end].rstrip(".!?")
    return _drop_parentheticals(sentence, span.start - span.sentence_start, span.end - span.sentence_start)


def _appositive_question(span: AnswerSpan, sentence: str, a: int, b: int) -> str | None:
    """'Hettie Brannagh, the institute's ombudsperson, ...' → 'Who is the institute's ombudsperson?'."""
    if span.kind not in {"person", "entity", "place"}:
        return None
    m = re.match(r",\s+((?:the|a|an)\s+[^,;:]{3,80}?)(?:,|$)", sentence[b:])
    if not m or any(_verb_form(w) or w.lower() in _CLAUSE_WORDS for w in m.group(1).split()):
        return None
    past = any(_verb_form(w) == "VBD" or w.lower() in {"was", "were"} for w in sentence.split())
    wh = "Who" if span.kind == "person" else ("Where" if span.kind == "place" else "What")
    if wh == "Where":
        return None  # "Where is the capital" reads oddly; a place apposition is a "What"
    return _finish(f"{wh} {'was' if past else 'is'} {m.group(1)}")


def _clause_question(span: AnswerSpan, sentence: str, a: int, b: int, context: str) -> str | None:
    """The answer replaced by a wh-phrase inside the main clause of its comma segment."""
    bounds = _clause(sentence, a, b)
    if bounds is None:
        return None
    cs, ce = bounds
    clause = sentence[cs:ce]
    a, b = a - cs, b - cs
    before = [m for m in _WORD.finditer(clause[:a])]
    after_text = clause[b:]
    first = before[0].group().lower() if before else ""
    if first in _PREPOSITIONS and (len(before) == 1 or (len(before) == 2 and before[1].group().lower() in _DETERMINERS)):
        # The answer is an adverbial of its own segment ("In 1066, ...", "..., at Levi's Stadium"): ask about
        # the main clause instead — "Where was the game played?"
        wh = wh_word(span, first)
        if wh in _ABSORBED and first in _ABSORBED[wh]:
            return _adjunct_question(sentence, (cs, ce), wh, context)
        return None
    # A clause opening with an introducer ("As this was ...") has no subject of its own here.
    if first in _INTRO:
        return None
    if cs > 0 and sentence[:cs].split()[0].lower() not in _INTRO:
        return None  # a later segment is an apposition or a list item, not the main clause
    preceding = before[-1].group().lower() if before else ""
    wh = wh_word(span, preceding)
    verb_index = next((i for i, m in enumerate(before) if i > 0 and _verb_form(m.group())
                       and before[i - 1].group().lower() not in _DETERMINERS), None)

    if verb_index is None:
        return _subject_question(span, wh, before, after_text)

    verb = before[verb_index].group()
    form = _verb_form(verb)
    subject = _lower_first(clause[: before[verb_index].start()].strip(), context)
    if not _clean_subject(subject) or re.match(r"['’]s\b", after_text):
        return None
    head = [m.group() for m in before[verb_index + 1 :]]
    if any(w.endswith((",", ";")) for w in head):
        return None  # the answer is an item of a list ("48 metres long, 6 metres wide")
    if verb.lower() in {"has", "have", "had"} and not any(_is_participle(w) for w in head[:2]):
        form = "VBD" if verb.lower() == "had" else "VBZ"  # possession: "has a room" → "does ... have"
        verb = {"has": "has", "have": "has", "had": "had"}[verb.lower()]
    while head and head[-1].lower() in _APPROXIMATORS and span.kind in {"number", "money", "percent"}:
        head.pop()  # "about 1,200 people" → "How many people"
    if head and head[-1].lower() == "every" and span.kind in {"number", "date"} and wh.startswith(("How many", "What")):
        head.pop()
        wh = "How often" if span.kind == "number" else "When"
    # head = [verb-ish words] [object NP] [preposition] [determiner + modifiers] answer
    stranded = ""
    modifiers: list[str] = []
    det = next((i for i in range(len(head) - 1, -1, -1) if head[i].lower() in _DETERMINERS), None)
    if det is not None and all(_is_modifier(w) for w in head[det + 1 :]):
        modifiers, head = head[det + 1 :], head[:det]
    elif det is None and head and all(w.islower() and _is_modifier(w) for w in head) and "NOUN" in _readings(head[-1]):
        modifiers, head = head, []  # "requires form [CA-3]" → "Which form"
    if head and head[-1].lower() in _PREPOSITIONS:
        prep = head.pop().lower()
        if prep not in _ABSORBED.get(wh, set()):
            stranded = prep
    elif wh in {"When", "Where", "In what year", "In what decade"}:
        return None  # "Where" needs its preposition ("in Paris"); a bare object is a "What"
    # The answer must not sit in an embedded clause; nor, unless it is a time or place adverbial that the
    # wh-word simply replaces, behind a second prepositional phrase.
    blocked = _CLAUSE_WORDS if wh in _ABSORBED else _CLAUSE_WORDS | _PREPOSITIONS
    if any(_verb_form(w) == "aux" or w.lower() in blocked for w in head):
        return None
    if modifiers:
        last = modifiers[-1]
        if wh not in {"What", "Who"} or span.kind not in {"entity", "person", "place", "term", "quote"} or not (last[:1].isupper() or "NOUN" in _readings(last)):
            return None
        wh = "Which " + " ".join(modifiers)
    tail = _TAIL_BREAKS.split(after_text, maxsplit=1)[0]
    tail_words = tail.split()
    if tail_words and span.kind in {"year", "date", "number"} and tail_words[0].lower() in {"to", "until", "and", "or", "through"}:
        return None  # one end of a range ("from 1961 to 1972")
    if tail_words and tail_words[0] == "of":
        return None  # partitive ("two of the six packages") or the head of a longer phrase
    if wh == "How many":  # count the noun that follows: "won 24 games" → "How many games"
        k = 0
        while k < min(3, len(tail_words)) and re.fullmatch(r"[a-z]+", tail_words[k]) and {"NOUN", "ADJ"} & set(_readings(tail_words[k])):
            k += 1
        while k > 0 and not re.search(r"(?:s|people|staff|children|men|women)$", tail_words[k - 1]):
            k -= 1  # the counted noun is plural: "42 permanent survey plots"
        counted, tail_words = tail_words[:k], tail_words[k:]
        wh = f"How many {' '.join(counted)}" if counted else "What"
    if stranded == "than":
        return None
    if stranded and wh.startswith("How") and stranded in _FRONTABLE:
        wh, stranded = f"{stranded.capitalize()} {wh[0].lower()}{wh[1:]}", ""  # "Within how many days ..."
    if stranded and (tail_words or stranded == "of" or wh in _ABSORBED):
        return None  # "What was X the champion of __ for the season" reads badly
    if tail_words and (tail_words[0][:1] in "'’" or tail_words[0][:1].isupper() or tail_words[0][:1].isdigit()):
        return None  # an appositive or possessive follows the answer ("code [AMB-17]", "Fishers' Guild")
    if tail_words and not wh.startswith("How") and tail_words[0][:1].islower() and tail_words[0].lower() not in _PREPOSITIONS | {"to"} and _verb_form(tail_words[0]) is None:
        return None  # the answer is part of a longer phrase ("an [American] football game")
    rest = " ".join(head + tail_words + ([stranded] if stranded else []))
    return _invert(wh, verb, subject, rest, form)


def _invert(wh: str, verb: str, subject: str, rest: str, form: str | None = None) -> str | None:
    """wh + fronted auxiliary (or do-support) + subject + the rest: 'When' 'was' 'the game' 'played'."""
    if not subject:
        return None
    form = form or _verb_form(verb)
    if form == "aux":
        body = f"{verb.lower().strip(',')} {subject} {rest}"
    else:
        lemma = "have" if verb.lower() in {"has", "had"} else _readings(verb)["VERB"][0]
        body = f"{'did' if form == 'VBD' else 'does'} {subject} {lemma} {rest}"
    return _finish(f"{wh} {body}")


def _adjunct_question(sentence: str, answer_segment: tuple[int, int], wh: str, context: str) -> str | None:
    """A When/Where question about the sentence's main clause (the answer's own segment left out)."""
    cuts = list(re.finditer(r"[,;:]\s+(?!\d)|\s[–—]\s", sentence))
    starts = [0] + [m.end() for m in cuts]
    ends = [m.start() for m in cuts] + [len(sentence)]
    for s, e in zip(starts, ends):
        if s < answer_segment[1] and answer_segment[0] < e:
            continue
        words = list(_WORD.finditer(sentence[s:e]))
        if not words or words[0].group().lower() in _INTRO | _CLAUSE_WORDS:
            continue
        verb_index = next((i for i, m in enumerate(words) if i > 0 and _verb_form(m.group())), None)
        if verb_index is None:
            continue
        subject = _lower_first(sentence[s : s + words[verb_index].start()].strip(), context)
        rest = [m.group() for m in words[verb_index + 1 :]]
        cut = next((i for i, w in enumerate(rest) if w.lower() in _CLAUSE_WORDS), len(rest))
        rest = rest[:cut]  # "... two packages [that the FA offered]"
        if not _clean_subject(subject):
            return None
        return _invert(wh, words[verb_index].group(), subject, " ".join(rest))
    return None


def _is_participle(word: str) -> bool:
    from lemminflect import getInflection

    verb = _readings(word).get("VERB")
    return bool(verb) and word.lower() != verb[0] and word.lower() in getInflection(verb[0], "VBN")


def _clean_subject(subject: str) -> bool:
    """A plain noun phrase: no clause words, auxiliaries or past-tense verbs inside it."""
    from lemminflect import getInflection

    words = [w.lower().strip(",;:\"“”") for w in subject.split()]
    if not words or words[0] in _CLAUSE_WORDS or (words[0].endswith("ly") and len(words) > 1):
        return False
    for w in words:
        if w in _CLAUSE_WORDS or w in _AUX or w in _SUBJECT_BREAKERS or w in {"-", "to"}:
            return False
        verb = _readings(w).get("VERB")
        if verb and w != verb[0] and w in getInflection(verb[0], "VBD"):
            return False
    return True


def _subject_question(span: AnswerSpan, wh: str, before: list[re.Match[str]], after_text: str) -> str | None:
    """The answer is the clause's subject: 'Who defeated the Carolina Panthers 24–10?'."""
    if wh in {"When", "Where", "In what year", "In what decade"}:
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
