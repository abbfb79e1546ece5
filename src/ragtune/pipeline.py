"""The one answer path: retrieve → prompt with numbered sources → generate in batches → parse → cite.

`ask`, `compare` (every arm) and `serve` all call `answer_from_hits` with `AnswerSettings.resolve(...)`, so
the numbers in a report are the numbers a user gets. `answer` = `retrieve` + `answer_from_hits`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ragtune.config import GenerateConfig
from ragtune.errors import BackendError, InputError, require_input_file
from ragtune.generate.base import Generator, generate_spans
from ragtune.generate.citations import choose_sources, valid_citations
from ragtune.generate.evidence import ANSWER_PICKS
from ragtune.generate.extract import ANSWER_FORMS, snap_to_sources, source_of, span_text
from ragtune.generate.prompts import build_messages, condense_answer, parse_answer
from ragtune.generate.registry import backend_name
from ragtune.generate.screening import SCREENING_MODES, screen_hits
from ragtune.progress import progress_task
from ragtune.retrieve.base import Filters, Retriever
from ragtune.types import Embedder, Generation, Hit, Prediction

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 8  # questions generated together when neither the settings nor the generator say


@dataclass(frozen=True)
class AnswerSettings:
    """How hits become an answer: the prompt, the passages shown, decoding length and batching.

    prompt_style: 'guided' (worked examples before the question) | 'plain'. context_sentences: passages cut
    to that many sentences closest to the question (ragtune.generate.compress; 0 = whole passages), scored
    with `embedder` (the index's embedder) or by word overlap when it is None. answer_form: 'free' (the model's
    words) | 'snap' (the model's answer replaced by the closest span of the passages shown) | 'span' (decoded
    as a span of them) | 'free-or-span' (the model's words when a passage shown holds them, else decoded again as
    a span); ragtune.generate.extract; questions without passages answer freely. batch_size: questions per
    generate call (None: the generator's own, else 8). Build it with
    `AnswerSettings.resolve`, as ask, compare and serve do, so that "auto" means the same everywhere.

    >>> AnswerSettings.resolve(GenerateConfig(model="bundled")).prompt_style
    'guided'
    """

    prompt_style: Literal["guided", "plain"] = "plain"
    context_sentences: int = 0
    max_new_tokens: int = 64
    batch_size: int | None = None
    embedder: Embedder | None = None
    answer_form: Literal["free", "snap", "span", "free-or-span"] = "free"
    screening: Literal["neutralise", "drop", "off"] = "neutralise"
    answer_pick: Literal["joint", "evidence"] = "joint"

    def __post_init__(self) -> None:
        if self.prompt_style not in ("guided", "plain"):
            raise InputError(f"prompt_style must be 'guided' or 'plain', got {self.prompt_style!r}")
        if self.screening not in SCREENING_MODES:
            raise InputError(f"screening must be one of {', '.join(SCREENING_MODES)}, got {self.screening!r}")
        if self.answer_pick not in ANSWER_PICKS:
            raise InputError(f"answer_pick must be one of {', '.join(ANSWER_PICKS)}, got {self.answer_pick!r}")
        if self.answer_form not in ANSWER_FORMS:
            raise InputError(f"answer_form must be one of {', '.join(ANSWER_FORMS)}, got {self.answer_form!r}")
        if self.context_sentences < 0:
            raise InputError(f"context_sentences must be at least 0, got {self.context_sentences}")
        if self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.batch_size is not None and self.batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {self.batch_size}")

    @classmethod
    def resolve(cls, config: GenerateConfig, embedder: Embedder | None = None) -> AnswerSettings:
        """The settings for answering with the generator of `config`, "auto" resolved in this one place.

        prompt_style "auto": guided for a local model without an adapter; plain with an adapter (trained on
        plain prompts) or an endpoint (reads well). context_sentences None: DEFAULT_CONTEXT_SENTENCES for
        local models, 0 (whole passages) for endpoints. `embedder` should be the index's (what retrieval
        embeds with); max_new_tokens comes from the config, batch_size stays the generator's own.
        """
        from ragtune.generate.compress import DEFAULT_CONTEXT_SENTENCES

        local = backend_name(config.model) == "hf"
        style = config.prompt_style
        if style == "auto":
            style = "guided" if local and config.adapter is None else "plain"
        keep = config.context_sentences
        if keep is None:
            keep = DEFAULT_CONTEXT_SENTENCES if local else 0
        return cls(prompt_style=style, context_sentences=keep, max_new_tokens=config.max_new_tokens, embedder=embedder,
                   answer_form=config.answer_form, screening=config.screening, answer_pick=config.answer_pick)

    def describe(self) -> dict[str, object]:
        """The JSON-able part (for a run's setup record): prompt style, context sentences, max tokens, answer form,
        screening."""
        return {"prompt_style": self.prompt_style, "context_sentences": self.context_sentences,
                "max_new_tokens": self.max_new_tokens, "answer_form": self.answer_form, "screening": self.screening,
                "answer_pick": self.answer_pick}


def retrieve(
    questions: Sequence[str], retriever: Retriever, k: int = 5, filters: Filters | None = None
) -> list[list[Hit]]:
    """One batched retrieval: the hits of each question, best first (validated: one list per question)."""
    _check_questions(questions)
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    hits_per_question = [list(h) for h in retriever.retrieve(list(questions), k=k, filters=filters)]
    if len(hits_per_question) != len(questions):
        raise InputError(f"retriever returned {len(hits_per_question)} hit lists for {len(questions)} questions")
    return hits_per_question


def answer(
    questions: list[str],
    generator: Generator,
    retriever: Retriever | None = None,
    settings: AnswerSettings | None = None,
    *,
    k: int = 5,
    filters: Filters | None = None,
    arm: str = "",
    qids: Sequence[str] | None = None,
) -> list[Prediction]:
    """`retrieve` then `answer_from_hits`; retriever=None means closed-book (no sources in the prompt).

    settings=None: AnswerSettings() (plain prompt, whole passages, 64 new tokens). The hits are screened for
    prompt injection (`settings.screening`) as serve screens them. Retrieval time is amortised over the questions
    and reported as each prediction's retrieve_ms.

    >>> preds = answer(["Who wrote it?"], generator, open_retriever(index, "hybrid"),  # doctest: +SKIP
    ...                AnswerSettings.resolve(config, index.embedder))
    """
    _check_questions(questions)
    if not questions:
        return []
    settings = settings or AnswerSettings()
    hits_per_question = None
    retrieve_ms = 0.0
    if retriever is not None:
        start = time.perf_counter()
        hits_per_question = retrieve(questions, retriever, k=k, filters=filters)
        if settings.screening != "off":  # as serve screens what it retrieves (ragtune.serve.service)
            hits_per_question = screen_hits(hits_per_question, settings.screening)[0]
        retrieve_ms = (time.perf_counter() - start) * 1000 / len(questions)
    return answer_from_hits(questions, hits_per_question, generator, settings, arm=arm, qids=qids,
                            retrieve_ms=retrieve_ms)


def answer_from_hits(
    questions: Sequence[str],
    hits_per_question: Sequence[Sequence[Hit] | None] | None,
    generator: Generator,
    settings: AnswerSettings,
    *,
    arm: str = "",
    qids: Sequence[str] | None = None,
    retrieve_ms: float = 0.0,
) -> list[Prediction]:
    """Answer questions from hits already retrieved (None, or None for a question: closed-book).

    Passages are cut per `settings` (the prediction keeps the whole hits, for citations) and generation
    runs in chunks of `settings.batch_size` (else the generator's own batch size, else 8). Timings are
    amortised: every question gets its chunk's wall time divided by the number of questions in it
    (generate_ms), and `retrieve_ms` (per question) plus the compression time per question as retrieve_ms,
    so per-question figures sum to the real total.
    """
    _check_questions(questions)
    if qids is not None and len(qids) != len(questions):
        raise InputError(f"qids has {len(qids)} entries for {len(questions)} questions")
    if not questions:
        return []
    hits: list[list[Hit] | None] = [None] * len(questions)
    if hits_per_question is not None:
        if len(hits_per_question) != len(questions):
            raise InputError(f"{len(hits_per_question)} hit lists for {len(questions)} questions")
        hits = [None if h is None else list(h) for h in hits_per_question]
    shown = list(hits)
    with_sources = [i for i, h in enumerate(hits) if h is not None]
    if settings.context_sentences and with_sources:
        from ragtune.generate.compress import compress_hits

        start = time.perf_counter()
        cut = compress_hits([questions[i] for i in with_sources], [hits[i] for i in with_sources],
                            settings.context_sentences, settings.embedder)
        for i, cut_hits in zip(with_sources, cut, strict=True):
            shown[i] = cut_hits
        retrieve_ms += (time.perf_counter() - start) * 1000 / len(questions)
    guided = settings.prompt_style == "guided"
    messages = [build_messages(q, h, examples=guided) for q, h in zip(questions, shown, strict=True)]
    step = settings.batch_size or getattr(generator, "batch_size", None) or DEFAULT_BATCH_SIZE
    predictions: list[Prediction] = []
    with progress_task(f"Answering{f' ({arm})' if arm else ''}", total=len(questions)) as task:
        for start_index in range(0, len(questions), step):
            chunk = messages[start_index : start_index + step]
            start = time.perf_counter()
            passages, constrained = None, False
            if settings.answer_form != "free":
                passages = [None if h is None else [hit.chunk.text for hit in h]
                            for h in shown[start_index : start_index + step]]
            if settings.answer_form == "span":
                generations, constrained = generate_spans(generator, chunk, settings.max_new_tokens, passages)
            else:  # free, snap or free-or-span: generated freely (then snapped, or checked against the passages)
                generations = generator.generate(chunk, max_new_tokens=settings.max_new_tokens)
            _check_count(generator, generations, chunk)
            if settings.answer_form == "free-or-span":
                generations, passages, constrained = _span_unheld(
                    generator, chunk, generations, passages, questions[start_index : start_index + step],
                    settings.max_new_tokens)
            generate_ms = (time.perf_counter() - start) * 1000 / len(chunk)
            predictions.extend(_prediction(questions, hits, generations, start_index, retrieve_ms, generate_ms, arm,
                                           qids, passages, constrained))
            task.advance(len(chunk))
    if settings.answer_pick == "evidence" and with_sources:
        predictions = _pick_by_evidence(questions, hits, predictions, generator, settings, arm)
    log.debug("answered %d questions (arm=%r, with sources=%d)", len(questions), arm, len(with_sources))
    return predictions


def _check_count(generator: Generator, generations: Sequence[Generation], prompts: Sequence[object]) -> None:
    """One answer per prompt, or a BackendError naming the model (a backend that drops or adds answers)."""
    if len(generations) != len(prompts):
        raise BackendError(f"{generator.model_id} returned {len(generations)} answers for {len(prompts)} prompts")


def _span_unheld(
    generator: Generator, chunk: list, generations: list[Generation], passages: list[list[str] | None],
    questions: Sequence[str], max_new_tokens: int,
) -> tuple[list[Generation], list[list[str] | None], bool]:
    """answer_form "free-or-span": a free answer that a passage shown holds stays as written (its row's passages
    become None: answered freely); one that none holds is decoded again as a span of them (`generate_spans`; its
    tokens count both generations). A generator that cannot constrain its decoding is not asked again: its answer
    is snapped to the passages instead, as "span" does. Returns the generations, the passages per row and whether
    the span rows were constrained."""
    unheld = []
    for row, (generation, shown) in enumerate(zip(generations, passages, strict=True)):
        if shown is None:
            continue
        text = condense_answer(parse_answer(generation.text).answer, questions[row])
        if text and source_of(text, shown) is not None:
            passages[row] = None
        else:
            unheld.append(row)
    if not unheld or not getattr(generator, "constrains_spans", False):
        return generations, passages, False
    spans, constrained = generate_spans(generator, [chunk[row] for row in unheld], max_new_tokens,
                                        [passages[row] for row in unheld])
    _check_count(generator, spans, unheld)
    out = list(generations)
    for row, span in zip(unheld, spans, strict=True):
        first = generations[row]
        out[row] = Generation(span.text, first.prompt_tokens + span.prompt_tokens,
                              first.completion_tokens + span.completion_tokens)
    return out, passages, constrained


def _pick_by_evidence(
    questions: Sequence[str], hits: list[list[Hit] | None], joint: list[Prediction], generator: Generator,
    settings: AnswerSettings, arm: str,
) -> list[Prediction]:
    """answer_pick "evidence": answer again from each passage alone (the same settings, passages cut alike), then
    keep per question the candidate — the joint answer first, then passage 1, 2, ... — whose backing sentence is
    closest to the question (ragtune.generate.evidence). Tokens and times count every generation; the kept
    answer's citation is the passage it came from (the joint answer keeps its own)."""
    from ragtune.generate.evidence import evidence_scores, pick

    owners = [(i, j) for i, h in enumerate(hits) if h for j in range(len(h))]
    alone = answer_from_hits([questions[i] for i, _ in owners], [[hits[i][j]] for i, j in owners], generator,
                             dataclasses.replace(settings, answer_pick="joint"),
                             arm=f"{arm}, each passage alone" if arm else "each passage alone")  # (a progress label)
    by_question: dict[int, list[Prediction]] = {}
    for (i, _), prediction in zip(owners, alone, strict=True):
        by_question.setdefault(i, []).append(prediction)
    asked = sorted(by_question)
    candidates = []
    for i in asked:
        passages = [hit.chunk.text for hit in hits[i]]
        number = source_of(joint[i].answer, passages)
        candidates.append([(joint[i].answer, passages[number - 1] if number else "")]
                          + [(p.answer, passages[j]) for j, p in enumerate(by_question[i])])
    scores = evidence_scores([questions[i] for i in asked], candidates, settings.embedder)
    out = list(joint)
    for i, per_candidate in zip(asked, scores, strict=True):
        extra = by_question[i]
        best = pick(per_candidate)
        kept = joint[i] if best == 0 else extra[best - 1]
        out[i] = dataclasses.replace(
            joint[i], answer=kept.answer, cited=joint[i].cited if best == 0 else (best,),
            retrieve_ms=joint[i].retrieve_ms + sum(p.retrieve_ms for p in extra),
            generate_ms=joint[i].generate_ms + sum(p.generate_ms for p in extra),
            prompt_tokens=joint[i].prompt_tokens + sum(p.prompt_tokens for p in extra),
            completion_tokens=joint[i].completion_tokens + sum(p.completion_tokens for p in extra),
            answer_tokens=kept.completion_tokens,
        )
    return out


def _check_questions(questions: Sequence[str]) -> None:
    if isinstance(questions, str):
        raise InputError(f"questions must be a list of strings, got a single string: {questions!r}")
    for question in questions:
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"every question must be a non-empty string, got {question!r}")


def _prediction(
    questions: Sequence[str],
    hits_per_question: list[list[Hit] | None],
    generations: list[Generation],
    start_index: int,
    retrieve_ms: float,
    generate_ms: float,
    arm: str,
    qids: Sequence[str] | None,
    passages: list[list[str] | None] | None = None,
    constrained: bool = False,
) -> Iterator[Prediction]:
    """`passages` (span answers), per question of the chunk: the passages its reply is a span of (None: answered
    freely); `constrained`: the replies were decoded as spans, else each free reply is snapped to its passages."""
    for offset, generation in enumerate(generations):
        i = start_index + offset
        hits = hits_per_question[i] or []
        parsed = parse_answer(generation.text)
        text = condense_answer(parsed.answer, questions[i])
        cited = valid_citations(parsed.cited, len(hits))
        shown = None if passages is None else passages[offset]
        if shown is not None:
            text = span_text(generation.text) if constrained else snap_to_sources(text, shown)
            # the source a span comes from is its citation (the best-ranked of those holding it)
            number = source_of(text, shown)
            cited = (number,) if number else cited
        yield Prediction(
            question=questions[i],
            answer=text,
            hits=tuple(hits),
            cited=cited,
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
    require_input_file(path, "questions file")
    qids, questions = [], []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{path}:{number}: invalid JSON: {exc}") from exc
            except RecursionError:
                raise InputError(f"{path}:{number}: invalid JSON: nested too deeply") from None
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
