"""Synthetic reading-comprehension QA from indexed chunks: answer spans first, then questions, then filters.

1. candidate answers: short spans of the chunk (dates, numbers, names, defined terms; `answer_spans`),
   drawn with a seeded, per-chunk RNG that favours informative kinds and different sentences;
2. a question per span: the rule-based wh-transformation of its sentence (`question_rules`), or — for chunks
   where the rules found none, or with questions="llm" — the LLM with a few-shot answer-aware prompt; with
   questions="cloze", a wh-cloze question (`cloze_questions`) for the spans the rules cannot transform;
3. filters, each counted by reason: the answer must be a span of the chunk, absent from the question; the
   question a 4–30-word sentence ending in '?', not a duplicate; optionally a round trip (the model, given the
   chunk and the question, answers something overlapping the answer);
4. optional paraphrases of each kept question (LLM rewording, or rule rewrites of the wh-phrase); a model
   rewording that drops a name or number, brings in a foreign one, or turns into a quantity question is
   rejected as "paraphrase_drift" (the bundled model drifts in about half of its rewordings).

>>> result = synthesize_qa(chunks, None, per_chunk=2, seed=0)  # doctest: +SKIP
>>> write_qa_jsonl(result.examples, "qa.jsonl")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from ragtune.atomic import write_lines_atomic
from ragtune.errors import ConfigError, InputError
from ragtune.generate.base import Generator, Messages, generate_until
from ragtune.progress import progress_task
from ragtune.text import normalize_answer, token_f1
from ragtune.train.answer_spans import AnswerSpan, choose_spans, extract_answer_spans
from ragtune.train.cloze_questions import cloze_question
from ragtune.train.paraphrase import (
    MAX_QUESTION_WORDS,
    MIN_QUESTION_WORDS,
    QUESTION_TOKENS,
    ROWS_PER_CALL_BATCHES,
    clean_question,
    keeps_meaning,
    paraphrase_with_model,
    paraphrase_with_rules,
    question_complete,
)
from ragtune.train.question_rules import rule_question
from ragtune.types import Chunk, Example

logger = logging.getLogger(__name__)

QuestionMode = Literal["auto", "rules", "llm", "cloze"]
QUESTION_MODES: tuple[str, ...] = get_args(QuestionMode)
REJECT_REASONS = ("no_question", "empty", "answer_not_in_chunk", "answer_in_question", "no_question_mark",
                  "too_short", "too_long", "vague_subject", "not_factoid", "answer_type", "duplicate", "round_trip",
                  "paraphrase_drift")

# A question whose subject is a bare pronoun ("In what year was it first carried out?") cannot be answered
# without its passage: useless for closed-book training and ambiguous with retrieval.
_VAGUE_SUBJECT = re.compile(
    r"^(?:(?:in|on|at|by|for|from|to|with)\s+)?(?:wh\w+|how(?:\s+\w+)?)(?:\s+\w+)?\s+"
    r"(?:is|was|are|were|did|does|do|has|have|had|will|can|could|must|should)\s+(?:it|they|he|she|this|these|those)\b",
    re.IGNORECASE,
)
# Questions no short answer span can answer (why / how does / what is the purpose of ...).
_NOT_FACTOID = re.compile(r"^(?:why\b|how\s+(?:does|do|did|can|could|should|is|are)\b|what\s+is\s+the\s+"
                          r"(?:purpose|role|meaning|significance|importance)\s+of\b)", re.IGNORECASE)
_NUMERIC_QUESTION = re.compile(r"^(?:\w+\s+)?(?:how\s+(?:many|much|long|often|far|old|big|large|high|deep)|"
                               r"(?:what|which)\s+(?:year|number|amount|percentage|date))\b|^when\b", re.IGNORECASE)
_NAME_QUESTION = re.compile(r"^(?:\w+\s+)?(?:who|whom|whose|where)\b|\bname\b", re.IGNORECASE)
_NUMBER_WORDS = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
                           r"hundred|thousand|million|billion|dozen|half|once|twice|daily|weekly|monthly|yearly|"
                           r"annually|january|february|march|april|may|june|july|august|september|october|"
                           r"november|december|monday|tuesday|wednesday|thursday|friday|saturday|sunday|spring|"
                           r"summer|autumn|winter|century|decade)\b", re.IGNORECASE)

SYSTEM_QUESTION = (
    "You write reading-comprehension questions. Given a sentence and an answer taken from it, write one short "
    "question that the answer answers. Do not put the answer in the question. Reply with the question only."
)
_QUESTION_SHOTS = [
    ("The game was played on February 7, 2016, at Levi's Stadium in Santa Clara.", "Levi's Stadium",
     "Where was the game played?"),
    ("The company employs about 1,200 people in its Berlin office.", "1,200", "How many people work in the Berlin office?"),
    ("Expense reports must be approved by the finance director within ten days.", "the finance director",
     "Who must approve expense reports?"),
]


@dataclass(frozen=True)
class SynthResult:
    """Kept examples (originals followed by their paraphrases, in chunk order) and rejections by reason."""

    examples: list[Example]
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def kept(self) -> dict[str, int]:
        """Kept examples by kind ('original', 'paraphrase')."""
        return dict(Counter(e.metadata.get("kind", "original") for e in self.examples))


@dataclass
class _Candidate:
    chunk: Chunk
    span: AnswerSpan
    question: str = ""
    method: str = "rules"


def _norm(text: str) -> str:

    return normalize_answer(text)


def question_messages(sentence: str, answer: str) -> Messages:
    """Few-shot chat messages asking for a question whose answer is `answer`, from its sentence."""
    messages: Messages = [{"role": "system", "content": SYSTEM_QUESTION}]
    for shot_sentence, shot_answer, shot_question in _QUESTION_SHOTS:
        messages.append({"role": "user", "content": f"Sentence: {shot_sentence}\nAnswer: {shot_answer}"})
        messages.append({"role": "assistant", "content": shot_question})
    messages.append({"role": "user", "content": f"Sentence: {sentence}\nAnswer: {answer}"})
    return messages


def check_pair(question: str, answer: str, context: str) -> str | None:
    """The first filter a (question, answer, chunk) triple fails, or None when it passes them all."""
    question, answer = question.strip(), answer.strip()
    if not question or not answer or not _norm(answer):
        return "empty"
    if _norm(answer) not in _norm(context):
        return "answer_not_in_chunk"
    if re.search(rf"(?<!\w){re.escape(_norm(answer))}(?!\w)", _norm(question)):
        return "answer_in_question"
    numbers = re.findall(r"\d+", answer)
    if numbers and all(re.search(rf"(?<!\d){n}(?!\d)", question) for n in numbers):
        return "answer_in_question"  # "What year is 1990?" -> "1990s"
    if not question.endswith("?"):
        return "no_question_mark"
    words = len(question.split())
    if words < MIN_QUESTION_WORDS:
        return "too_short"
    if words > MAX_QUESTION_WORDS:
        return "too_long"
    if _VAGUE_SUBJECT.match(question):
        return "vague_subject"
    if _NOT_FACTOID.match(question):
        return "not_factoid"
    return _answer_type_mismatch(question, answer)


def _answer_type_mismatch(question: str, answer: str) -> str | None:
    """'answer_type' when the wh-phrase asks for a number/date but the answer has none, or for a person, place or
    name but the answer is only a number ("What is the duty officer's name?" -> "18")."""
    if _NUMERIC_QUESTION.search(question) and not _NUMBER_WORDS.search(answer):
        return "answer_type"
    if _NAME_QUESTION.search(question) and not re.search(r"[^\W\d_]", answer):
        return "answer_type"
    return None


def synthesize_qa(
    chunks: Sequence[Chunk],
    generator: Generator | None,
    *,
    per_chunk: int = 2,
    paraphrases: int = 0,
    seed: int = 0,
    questions: QuestionMode = "auto",
    round_trip: bool = False,
    batch_size: int = 8,
) -> SynthResult:
    """Question/answer pairs from chunks, each with its chunk as the gold passage; generator None = rules only.

    questions: "rules" (wh-transformation of the answer's sentence), "llm" (few-shot answer-aware question
    generation for every span), "auto" (rules; the LLM only for chunks where the rules found no question) or
    "cloze" (rules, then wh-cloze questions for the spans the rules cannot transform, up to per_chunk; no LLM).
    Deterministic: the same chunks, seed and (greedy) generator give the same examples.
    """
    if per_chunk < 1:
        raise ConfigError(f"per_chunk must be at least 1, got {per_chunk}")
    if paraphrases < 0:
        raise ConfigError(f"paraphrases must be 0 or more, got {paraphrases}")
    if questions not in QUESTION_MODES:
        raise ConfigError(f"questions must be one of {', '.join(QUESTION_MODES)}, got {questions!r}")
    if generator is None and (questions == "llm" or round_trip):
        raise ConfigError("questions='llm' and round_trip need a generator (got None: rules only)")
    use_llm = generator is not None and questions not in ("rules", "cloze")
    rejected: Counter[str] = Counter()
    seen: set[str] = set()
    kept: list[_Candidate] = []
    with progress_task("Synthesizing questions", total=len(chunks)) as task:
        # chunks per group: the model's first round of questions fills about ROWS_PER_CALL_BATCHES batches
        group_size = max(1, batch_size * ROWS_PER_CALL_BATCHES // per_chunk)
        for start in range(0, len(chunks), group_size):
            group = chunks[start : start + group_size]
            group_kept = _questions_for_chunks(group, generator if use_llm else None, questions, per_chunk, seed,
                                               rejected, seen)
            if round_trip and group_kept:
                group_kept = _round_trip(generator, group_kept, rejected, batch_size)
            kept.extend(group_kept)
            task.advance(len(group))
    examples = _with_paraphrases(kept, generator, paraphrases, seed, rejected, seen, batch_size)
    logger.info("synthesized %d examples from %d chunks; rejected %s", len(examples), len(chunks), dict(rejected))
    return SynthResult(examples=examples, rejected={r: rejected[r] for r in REJECT_REASONS if rejected[r]})


def _questions_for_chunks(
    chunks: Sequence[Chunk],
    generator: Generator | None,
    mode: QuestionMode,
    per_chunk: int,
    seed: int,
    rejected: Counter[str],
    seen: set[str],
) -> list[_Candidate]:
    """Kept candidates for a group of chunks: rules first (unless mode='llm'), then the LLM for the rest."""
    kept_by_chunk: list[list[_Candidate]] = []
    llm_queue: list[tuple[int, list[_Candidate]]] = []
    for i, chunk in enumerate(chunks):
        # A per-chunk RNG: a chunk's questions do not depend on which other chunks are synthesized with it.
        rng = random.Random(f"{seed}:{chunk.chunk_id}")
        spans = extract_answer_spans(chunk.text)
        ordered = _weighted_order(spans, rng)
        kept: list[_Candidate] = []
        fallbacks: list[_Candidate] = []
        for span in ordered:
            if len(kept) >= per_chunk:
                break
            question = rule_question(chunk.text, span) if mode != "llm" else None
            candidate = _Candidate(chunk, span, question or "", "rules")
            if question is None:
                if mode == "cloze" or generator is not None and len(fallbacks) < 2 * per_chunk:
                    fallbacks.append(candidate)
                else:
                    rejected["no_question"] += 1
                continue
            if _accept(candidate, rejected, seen):
                kept.append(candidate)
        if mode == "cloze":
            for candidate in fallbacks:
                if len(kept) >= per_chunk:
                    break
                candidate.question, candidate.method = cloze_question(chunk.text, candidate.span) or "", "cloze"
                if candidate.question and _accept(candidate, rejected, seen):
                    kept.append(candidate)
                elif not candidate.question:
                    rejected["no_question"] += 1
        kept_by_chunk.append(kept)
        # Measured on SQuAD (bench/bench_synth.py) the bundled model's questions are far worse than the rules'
        # (token F1 to the human question 0.25 vs 0.44, often about the wrong thing), so "auto" asks it only
        # for chunks the rules found no question in.
        missing = per_chunk - len(kept) if generator is not None and (mode == "llm" or not kept) else 0
        if missing > 0:
            llm_queue.append((i, fallbacks[: 2 * missing]))
    if generator is not None and llm_queue:
        _llm_questions(generator, llm_queue, kept_by_chunk, per_chunk, rejected, seen)
    return [c for kept in kept_by_chunk for c in sorted(kept, key=lambda c: c.span.start)]


def _llm_questions(
    generator: Generator,
    queue: list[tuple[int, list[_Candidate]]],
    kept_by_chunk: list[list[_Candidate]],
    per_chunk: int,
    rejected: Counter[str],
    seen: set[str],
) -> None:
    """The model's questions for the chunks in `queue` (chunk position, its candidates in order), lazily.

    Each round asks, for every chunk still short of per_chunk, only as many of its next candidates as it still
    needs, all chunks in one generate call (the generator sorts, batches and regroups its rows). A chunk's later
    candidates are written only when earlier ones were rejected: the kept questions are the ones writing all of
    them in order would keep (only a duplicate across chunks may be settled in another order), with about a
    quarter fewer rows generated (bench/bench_synth.py --speed: the same questions in every run).
    """
    position = {i: 0 for i, _ in queue}
    while True:
        batch: list[tuple[int, _Candidate]] = []
        for i, candidates in queue:
            need = per_chunk - len(kept_by_chunk[i])
            taken = candidates[position[i] : position[i] + max(need, 0)]
            position[i] += len(taken)
            batch.extend((i, c) for c in taken)
        if not batch:
            return
        messages = [question_messages(_sentence(c), c.span.text) for _, c in batch]
        replies = generate_until(generator, messages, QUESTION_TOKENS, question_complete)
        for (i, candidate), reply in zip(batch, replies, strict=True):
            candidate.question, candidate.method = clean_question(reply.text), "llm"
            if len(kept_by_chunk[i]) < per_chunk and _accept(candidate, rejected, seen):
                kept_by_chunk[i].append(candidate)


def _weighted_order(spans: Sequence[AnswerSpan], rng: random.Random) -> list[AnswerSpan]:
    """All spans in a seeded random order that favours informative kinds and new sentences."""
    return choose_spans(spans, len(spans), rng, keep_order=False)


def _sentence(candidate: _Candidate) -> str:
    return candidate.chunk.text[candidate.span.sentence_start : candidate.span.sentence_end]


def _accept(candidate: _Candidate, rejected: Counter[str], seen: set[str]) -> bool:
    reason = check_pair(candidate.question, candidate.span.text, candidate.chunk.text)
    key = _norm(candidate.question)
    if reason is None and key in seen:
        reason = "duplicate"
    if reason is not None:
        rejected[reason] += 1
        return False
    seen.add(key)
    return True


def _round_trip(generator: Generator | None, candidates: list[_Candidate], rejected: Counter[str], batch_size: int) -> list[_Candidate]:
    """Keep the pairs whose answer the model recovers (token F1 > 0) when shown the chunk and the question."""
    from ragtune.generate.prompts import build_messages, parse_answer
    from ragtune.types import Hit

    assert generator is not None
    kept = []
    for start in range(0, len(candidates), batch_size):
        batch = candidates[start : start + batch_size]
        messages = [build_messages(c.question, [Hit(chunk=c.chunk, score=1.0)]) for c in batch]
        for candidate, reply in zip(batch, generator.generate(messages, max_new_tokens=32)):
            if token_f1(parse_answer(reply.text).answer, candidate.span.text) > 0:
                kept.append(candidate)
            else:
                rejected["round_trip"] += 1
    return kept


def _with_paraphrases(
    kept: list[_Candidate],
    generator: Generator | None,
    n: int,
    seed: int,
    rejected: Counter[str],
    seen: set[str],
    batch_size: int,
) -> list[Example]:
    """Examples for the kept candidates, each followed by its accepted paraphrases."""
    rewordings: list[list[str]] = [[] for _ in kept]
    if n > 0 and kept:
        if generator is not None:
            with progress_task("Paraphrasing questions", total=n * len(kept)) as task:
                rewordings = paraphrase_with_model(generator, [c.question for c in kept], n, batch_size,
                                                   on_batch=task.advance)
        else:
            rewordings = [paraphrase_with_rules(c.question, n, random.Random(f"{seed}:{c.question}")) for c in kept]
    examples: list[Example] = []
    for candidate, alternatives in zip(kept, rewordings):
        examples.append(_example(candidate, candidate.question, "original", candidate.method, seed))
        for text in alternatives:
            paraphrase = _Candidate(candidate.chunk, candidate.span, text, "paraphrase")
            if not keeps_meaning(candidate.question, text, candidate.chunk.text):
                rejected["paraphrase_drift"] += 1
            elif _accept(paraphrase, rejected, seen):
                examples.append(_example(candidate, text, "paraphrase", candidate.method, seed))
    return examples


def _example(candidate: _Candidate, question: str, kind: str, method: str, seed: int) -> Example:
    chunk, span = candidate.chunk, candidate.span
    return Example(
        question=question,
        answer=span.text,
        doc_id=chunk.doc_id,
        chunk_id=chunk.chunk_id,
        context=chunk.text,
        metadata={"source": "synth", "kind": kind, "seed": seed, "answer_start": span.start,
                  "answer_kind": span.kind, "method": method},
    )


def example_record(example: Example) -> dict:
    """The ragtune QA JSONL record of a synthesized example."""
    meta = example.metadata
    return {
        "question": example.question,
        "answer": example.answer,
        "doc_id": example.doc_id,
        "chunk_id": example.chunk_id,
        "context": example.context,
        "source": meta.get("source", "synth"),
        "kind": meta.get("kind", "original"),
        "seed": meta.get("seed", 0),
        "answer_start": meta.get("answer_start"),
        "answer_kind": meta.get("answer_kind", ""),
        "method": meta.get("method", ""),
    }


def write_qa_jsonl(examples: Sequence[Example], path: str | os.PathLike) -> Path:
    """Write examples as ragtune QA JSONL atomically (ragtune.atomic)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"output path is a directory: {str(path)!r}")
    try:
        return write_lines_atomic(path, (json.dumps(example_record(e), ensure_ascii=False) + "\n" for e in examples))
    except OSError as exc:
        raise InputError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
