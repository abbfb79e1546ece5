"""Prompts with numbered sources, and parsing of the model's reply.

Training (SFT, RAFT) and inference (ask, compare, serve) build prompts here and nowhere else, so a tuned
model sees at inference exactly the format it was trained on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ragtune.text import normalize_answer, split_first_sentence
from ragtune.types import Hit

SYSTEM_RAG = (
    "You answer questions using only the numbered sources. "
    "Give the shortest answer that is correct, then cite the source number like [1]."
)
SYSTEM_CLOSED = "You answer questions about the organisation's documents. Give the shortest answer that is correct."

ANSWER_MARKER = "Answer:"
QUOTE_MARKER = "Quote:"

_CITATION = re.compile(r"\[(\d{1,2})\]")

# Worked examples for untuned models (prompt style "guided"): three answer types (a person, a place, a
# phrase) so the model copies the short form rather than one kind of answer. On 120 SQuAD questions they
# lifted the untuned 135M model's F1 from 0.130 to 0.218 with compressed sources, and closed-book from 0.052
# to 0.070 (bench/bench_rag_layout.py).
WORKED_EXAMPLES = (
    ("Eiffel Tower", "The Eiffel Tower is a wrought-iron tower in Paris. It was designed by the company of "
     "Gustave Eiffel and finished in 1889 for the World's Fair.", "Whose company designed the Eiffel Tower?",
     "Gustave Eiffel"),
    ("Danube", "The Danube is the second-longest river in Europe. It rises in the Black Forest in Germany and "
     "flows into the Black Sea.", "Where does the Danube flow into?", "the Black Sea"),
    ("Photosynthesis", "Plants use photosynthesis to turn light, water and carbon dioxide into sugar, releasing "
     "oxygen as a by-product.", "What do plants release during photosynthesis?", "oxygen"),
)


MAX_TITLE_CHARS = 200  # of a source's title in a prompt: a long heading must not crowd out the passages


def format_sources(hits: Sequence[Hit], max_chars: int = 1500) -> str:
    """Number sources from 1 in rank order ('[1] Title: text', [1] the best hit) and list them best last, so the
    most relevant passage sits right before the question.

    Small models lean on what they read last: on 120 SQuAD questions with hybrid top-3 hits, the untuned 135M
    model's F1 was 0.102 with the best source listed first and 0.157 with it listed last (top-1 alone: 0.164;
    bench/bench_rag_layout.py). The numbers keep meaning rank, so citations map to hits as before.

    >>> from ragtune.types import Chunk
    >>> print(format_sources([Hit(Chunk("a#0", "a", "First."), 2.0), Hit(Chunk("b#0", "b", "Second."), 1.0)]))
    [2] Second.
    <BLANKLINE>
    [1] First.
    """
    lines = []
    for number, hit in enumerate(hits, start=1):
        if not hit.chunk.text.strip():  # emptied by context compression: keep the numbering, skip the source
            continue
        title = f"{hit.chunk.title[:MAX_TITLE_CHARS]}: " if hit.chunk.title else ""
        lines.append(f"[{number}] {title}{hit.chunk.text[:max_chars].strip()}")
    return "\n\n".join(reversed(lines))


def build_messages(question: str, hits: Sequence[Hit] | None, examples: bool = False) -> list[dict[str, str]]:
    """Chat messages for one question; closed-book when hits is None. `examples` puts the worked examples
    (WORKED_EXAMPLES, as earlier user/assistant turns) before the question.

    >>> build_messages("Who?", None)[1]
    {'role': 'user', 'content': 'Question: Who?'}
    >>> [m["role"] for m in build_messages("Who?", None, examples=True)][:3]
    ['system', 'user', 'assistant']
    """
    if hits is None:
        messages = [{"role": "system", "content": SYSTEM_CLOSED}]
        for _, _, worked_question, worked_answer in WORKED_EXAMPLES if examples else ():
            messages += [{"role": "user", "content": f"Question: {worked_question}"},
                         {"role": "assistant", "content": worked_answer}]
        return messages + [{"role": "user", "content": f"Question: {question.strip()}"}]
    messages = [{"role": "system", "content": SYSTEM_RAG}]
    for title, text, worked_question, worked_answer in WORKED_EXAMPLES if examples else ():
        messages += [{"role": "user", "content": f"Sources:\n[1] {title}: {text}\n\nQuestion: {worked_question}"},
                     {"role": "assistant", "content": f"{worked_answer} [1]"}]
    return messages + [
        {"role": "user", "content": f"Sources:\n{format_sources(hits)}\n\nQuestion: {question.strip()}"},
    ]


def format_raft_target(answer: str, quote: str | None, source_number: int | None) -> str:
    """The quote-then-answer completion RAFT trains on: 'Quote: [2] "..."\\nAnswer: X [2]'.

    Without a quote (oracle absent), the target is the bare answer line.
    """
    if quote and source_number:
        return f'{QUOTE_MARKER} [{source_number}] "{quote.strip()}"\n{ANSWER_MARKER} {answer.strip()} [{source_number}]'
    return f"{ANSWER_MARKER} {answer.strip()}"


def answer_line_complete(text: str) -> bool:
    """True once the generated text holds a finished answer line — a line with an answer left after the lead-ins
    ('The answer is:' alone does not count), not the RAFT quote line, followed by a newline. `parse_answer`
    reads nothing past it, so generation may stop there."""
    lines = text.split("\n")
    return any(not line.strip().startswith(QUOTE_MARKER) and clean_answer(line) for line in lines[:-1])


@dataclass(frozen=True)
class ParsedAnswer:
    answer: str  # the final answer text, citation markers removed
    cited: tuple[int, ...]  # 1-based source numbers cited anywhere in the reply
    raw: str


def parse_answer(text: str) -> ParsedAnswer:
    """Extract the final answer (after 'Answer:' if present) and the cited source numbers."""
    raw = text.strip()
    cited = tuple(dict.fromkeys(int(n) for n in _CITATION.findall(raw)))
    body = raw
    if ANSWER_MARKER in body:
        body = body.rsplit(ANSWER_MARKER, 1)[1]
    elif body.startswith(QUOTE_MARKER):
        body = body.split("\n", 1)[1] if "\n" in body else ""
    body = _CITATION.sub("", body).strip()
    return ParsedAnswer(answer=clean_answer(body), cited=cited, raw=raw)


# Small instruct models wrap short answers in boilerplate ("The answer to your question is: X"); stripping
# it raised SQuAD token F1 of the bundled model from 0.162 to 0.248 (bench/bench_prompts.py, 30 questions).
_LEAD_IN = re.compile(
    r"^(?:the\s+)?(?:short(?:est)?\s+|final\s+|correct\s+)?answer"
    r"(?:\s+to\s+(?:your|this|the)\s+question)?(?:\s+is|\s+would\s+be)?\s*:\s*",
    re.IGNORECASE,
)
_ACCORDING_TO = re.compile(r"^according\s+to\s+(?:the\s+)?(?:sources?|text|passage)?\s*(?:\d+\s*)?,\s*", re.IGNORECASE)


def clean_answer(text: str) -> str:
    """The first non-empty line, without lead-ins ('The answer is:', 'According to the source,') or quotes.

    >>> clean_answer('The answer to your question is: "Formal imperialism"\\nMore text.')
    'Formal imperialism'
    """
    for line in (line.strip() for line in text.strip().splitlines()):
        line = _LEAD_IN.sub("", _ACCORDING_TO.sub("", line)).strip()
        if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'":
            line = line[1:-1].strip()
        elif len(line) >= 3 and line[0] == '"' and line.endswith('".'):
            line = line[1:-2].strip()
        if line:  # a bare lead-in line ("The answer is:") means the answer is on the next line
            return line
    return ""


_COPULA = re.compile(r"\b(?:is|was|are|were|will be|has been|had been|would be)\s+", re.IGNORECASE)


def condense_answer(answer: str, question: str) -> str:
    """The short answer inside a sentence that restates the question, as small models write them: its first
    sentence only (the rest is drift), and after 'is/was/...' when the words before it mostly repeat the
    question ('The group that headlined the show was Coldplay.' -> 'Coldplay'). Measured on 200 SQuAD
    questions (bench/bench_compare_squad.py): the untuned model's RAG F1 0.078 -> 0.098; already-short answers
    are unchanged.
    """
    answer = answer.strip()
    sentences = split_first_sentence(answer)
    text = sentences[0].rstrip(". ")
    asked = set(normalize_answer(question).split())
    for match in _COPULA.finditer(text):
        head = normalize_answer(text[: match.start()]).split()
        tail = text[match.end() :].strip()
        if head and tail and sum(word in asked for word in head) / len(head) >= 0.6:
            return tail
    return text if len(sentences) > 1 else answer  # a one-sentence answer keeps its own wording
