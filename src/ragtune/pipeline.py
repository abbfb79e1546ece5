"""The one answer path: retrieve → prompt with numbered sources → generate in batches → parse → cite.

`ask`, `compare` (every arm) and `serve` all call `answer`, so the numbers in a report are the numbers a
user gets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from ragtune.errors import BackendError, InputError
from ragtune.generate.base import Generator
from ragtune.generate.citations import choose_sources, valid_citations
from ragtune.generate.prompts import build_messages, condense_answer, parse_answer
from ragtune.progress import progress_task
from ragtune.types import Generation, Hit, Prediction

log = logging.getLogger(__name__)


class Retriever(Protocol):
    """The retrieval contract (ragtune.retrieve implements it): batch of queries → hits per query."""

    def retrieve(self, queries: list[str], k: int = 10, filters: Any = None) -> list[list[Hit]]: ...


def answer(
    questions: list[str],
    generator: Generator,
    retriever: Retriever | None = None,
    k: int = 5,
    filters: dict | None = None,
    arm: str = "",
    max_new_tokens: int = 64,
    qids: Sequence[str] | None = None,
    batch_size: int | None = None,
    prompt_style: str | None = None,
    context_sentences: int | None = None,
) -> list[Prediction]:
    """Answer a batch of questions; retriever=None means closed-book (no sources in the prompt).

    `prompt_style` ('guided': with worked examples | 'plain') and `context_sentences` (passages cut to that
    many sentences closest to the question, ragtune.generate.compress; 0 = whole passages) default to the
    generator's own (GenerateConfig). The predictions keep the whole hits, for citations.

    Retrieval runs once for the whole batch and generation in chunks of `batch_size` questions (default:
    the generator's own batch size, else 8). Timings are amortised: every question gets its batch's
    wall time divided by the number of questions in it (retrieve_ms over the whole batch, generate_ms
    over its generation chunk), so per-question figures sum to the real total.
    """
    if isinstance(questions, str):
        raise InputError(f"questions must be a list of strings, got a single string: {questions!r}")
    if not questions:
        return []
    for question in questions:
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"every question must be a non-empty string, got {question!r}")
    if qids is not None and len(qids) != len(questions):
        raise InputError(f"qids has {len(qids)} entries for {len(questions)} questions")
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")

    retrieve_ms = 0.0
    hits_per_question: list[list[Hit] | None] = [None] * len(questions)
    if retriever is not None:
        start = time.perf_counter()
        hits_per_question = [list(h) for h in retriever.retrieve(list(questions), k=k, filters=filters)]
        retrieve_ms = (time.perf_counter() - start) * 1000 / len(questions)
        if len(hits_per_question) != len(questions):
            raise InputError(f"retriever returned {len(hits_per_question)} hit lists for {len(questions)} questions")

    style = prompt_style or getattr(generator, "prompt_style", "plain")
    if style not in ("guided", "plain"):
        raise InputError(f"prompt_style must be 'guided' or 'plain', got {style!r}")
    shown: list[list[Hit] | None] = list(hits_per_question)
    keep = getattr(generator, "context_sentences", 0) if context_sentences is None else context_sentences
    if keep and retriever is not None:
        from ragtune.generate.compress import compress_hits

        start = time.perf_counter()
        embedder = getattr(getattr(retriever, "index", None), "embedder", None)
        shown = list(compress_hits(questions, hits_per_question, keep, embedder))  # type: ignore[arg-type]
        retrieve_ms += (time.perf_counter() - start) * 1000 / len(questions)
    messages = [build_messages(q, hits, examples=style == "guided") for q, hits in zip(questions, shown, strict=True)]
    step = batch_size or getattr(generator, "batch_size", None) or 8
    predictions: list[Prediction] = []
    with progress_task(f"Answering{f' ({arm})' if arm else ''}", total=len(questions)) as task:
        for start_index in range(0, len(questions), step):
            chunk = messages[start_index : start_index + step]
            start = time.perf_counter()
            generations = generator.generate(chunk, max_new_tokens=max_new_tokens)
            generate_ms = (time.perf_counter() - start) * 1000 / len(chunk)
            if len(generations) != len(chunk):
                raise BackendError(f"{generator.model_id} returned {len(generations)} answers for {len(chunk)} prompts")
            predictions.extend(
                _prediction(questions, hits_per_question, generations, start_index, retrieve_ms, generate_ms, arm, qids)
            )
            task.advance(len(chunk))
    log.debug("answered %d questions (arm=%r, retrieval=%s)", len(questions), arm, retriever is not None)
    return predictions


def _prediction(
    questions: list[str],
    hits_per_question: list[list[Hit] | None],
    generations: list[Generation],
    start_index: int,
    retrieve_ms: float,
    generate_ms: float,
    arm: str,
    qids: Sequence[str] | None,
) -> Iterator[Prediction]:
    for offset, generation in enumerate(generations):
        i = start_index + offset
        hits = hits_per_question[i] or []
        parsed = parse_answer(generation.text)
        yield Prediction(
            question=questions[i],
            answer=condense_answer(parsed.answer, questions[i]),
            hits=tuple(hits),
            cited=valid_citations(parsed.cited, len(hits)),
            retrieve_ms=retrieve_ms,
            generate_ms=generate_ms,
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
            arm=arm,
            qid=qids[i] if qids is not None else "",
        )


def citations(prediction: Prediction, max_text_chars: int | None = None) -> list[dict]:
    """The sources backing a prediction: the ones it cites, else the best-supporting passage (cited=False).

    Each: {"number", "doc_id", "title", "chunk_id", "text", "score", "rank", "cited"}; [] when closed-book.
    """
    numbers, explicit = choose_sources(prediction.answer, prediction.cited, prediction.hits)
    out = []
    for number in numbers:
        hit = prediction.hits[number - 1]
        text = hit.chunk.text if max_text_chars is None else hit.chunk.text[:max_text_chars]
        out.append(
            {
                "number": number,
                "doc_id": hit.chunk.doc_id,
                "title": hit.chunk.title,
                "chunk_id": hit.chunk.chunk_id,
                "text": text,
                "score": float(hit.score),
                "rank": hit.rank,
                "cited": explicit,
            }
        )
    return out


def prediction_to_dict(prediction: Prediction, model: str = "") -> dict:
    """The `ask --json` shape: answer, citations, timings, plus tokens/model/arm extras."""
    return {
        "question": prediction.question,
        "answer": prediction.answer,
        "citations": citations(prediction),
        "timings": {"retrieve_ms": round(prediction.retrieve_ms, 2), "generate_ms": round(prediction.generate_ms, 2)},
        "tokens": {"prompt": prediction.prompt_tokens, "completion": prediction.completion_tokens},
        "model": model,
        "arm": prediction.arm,
        "sources": [
            {"number": n, "doc_id": h.chunk.doc_id, "title": h.chunk.title, "chunk_id": h.chunk.chunk_id, "score": float(h.score)}
            for n, h in enumerate(prediction.hits, start=1)
        ],
    }


def read_questions(path: str | Path) -> tuple[list[str], list[str]]:
    """(qids, questions) from a file: one question per line, or JSONL with "question" (and optional "id"/"qid").

    Blank lines are skipped; qids default to the 1-based line number.
    """
    import json

    path = Path(path)
    if path.is_dir():
        raise InputError(f"questions file {str(path)!r} is a directory, not a file")
    if not path.is_file():
        raise InputError(f"questions file not found: {str(path)!r}")
    qids, questions = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{path}:{number}: invalid JSON: {exc}") from exc
            question = row.get("question") if isinstance(row, dict) else None
            if not isinstance(question, str) or not question.strip():
                raise InputError(f"{path}:{number}: no \"question\" string in {line[:80]!r}")
            qids.append(str(row.get("qid") or row.get("id") or number))
            questions.append(question.strip())
        else:
            qids.append(str(number))
            questions.append(line)
    if not questions:
        raise InputError(f"no questions in {str(path)!r}")
    return qids, questions
