"""Running one arm of a comparison through the same `retrieve` + `answer_from_hits` path as `ask` and `serve`.

Every arm answers the same questions with the same decoding settings; generation is batched. Each answered
question becomes one prediction row (the predictions.jsonl contract of ragtune.evaluate.run_files). The arms
themselves (ARMS, parse_arms) live in ragtune.arms.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from ragtune.arms import ARMS
from ragtune.errors import InputError
from ragtune.pipeline import AnswerSettings, answer, citations
from ragtune.retrieve.base import Retriever
from ragtune.types import Example, Prediction

logger = logging.getLogger(__name__)


def gold_doc_ids(example: Example) -> list[str]:
    """Gold documents of a question: its doc_id, or metadata['doc_ids'] for multi-document questions."""
    many = example.metadata.get("doc_ids") if example.metadata else None
    if isinstance(many, list | tuple) and many:
        return [str(d) for d in many]
    return [example.doc_id] if example.doc_id else []


def prediction_row(example: Example, prediction: Prediction, arm: str, freshness: bool = False) -> dict[str, Any]:
    """One predictions.jsonl row."""
    return {
        "qid": example.qid,
        "arm": arm,
        "question": example.question,
        "answer": prediction.answer,
        "gold_answers": list(example.gold_answers),
        "gold_doc_ids": gold_doc_ids(example),
        "gold_chunk_ids": [example.chunk_id] if example.chunk_id else [],
        "citations": citations(prediction),
        # every retrieved passage (ids only), for retrieval recall@k; citations hold only the sources used
        "retrieved": [{"rank": i, "doc_id": h.chunk.doc_id, "chunk_id": h.chunk.chunk_id, "score": float(h.score)}
                      for i, h in enumerate(prediction.hits)],
        "retrieve_ms": prediction.retrieve_ms,
        "generate_ms": prediction.generate_ms,
        "prompt_tokens": prediction.prompt_tokens,
        "completion_tokens": prediction.completion_tokens,
        "freshness": freshness,
    }


def run_arm(
    arm: str,
    examples: Sequence[Example],
    generator: Any,
    retriever: Retriever | None,
    settings: AnswerSettings,
    *,
    k: int,
    batch_size: int = 16,
    freshness: bool = False,
    on_rows: Callable[[list[dict[str, Any]]], None] | None = None,
    progress: Any = None,
) -> list[dict[str, Any]]:
    """Answer `examples` with one arm, batch by batch; `on_rows` receives each finished batch (for resume).

    `settings` is `AnswerSettings.resolve(arm's GenerateConfig, index.embedder)`, as `ask` and `serve` use.
    """
    spec = ARMS[arm]
    if spec.retrieval and retriever is None:
        raise InputError(f"arm {arm!r} retrieves, but no index/retriever was given")
    rows: list[dict[str, Any]] = []
    for start in range(0, len(examples), batch_size):
        batch = list(examples[start : start + batch_size])
        t0 = time.perf_counter()
        predictions = answer([e.question for e in batch], generator, retriever if spec.retrieval else None, settings,
                             k=k, arm=arm)
        logger.debug("arm %s: %d questions in %.1fs", arm, len(batch), time.perf_counter() - t0)
        batch_rows = [prediction_row(e, p, arm, freshness) for e, p in zip(batch, predictions)]
        rows.extend(batch_rows)
        if on_rows is not None:
            on_rows(batch_rows)
        if progress is not None:
            progress.advance(len(batch))
    return rows
