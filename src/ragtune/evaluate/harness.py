"""Arms of a comparison: which model and whether it retrieves, run through the same `answer` path as `ask`.

Every arm answers the same questions with the same decoding settings; generation is batched. Each answered
question becomes one prediction row (the predictions.jsonl contract of ragtune.evaluate.run_files).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ragtune.errors import InputError
from ragtune.types import Example, Prediction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArmSpec:
    """An arm: does it retrieve, and which kind of adapter (None = the untuned base model) it needs."""

    name: str
    retrieval: bool
    adapter: str | None  # "sft" | "raft" | None
    description: str


ARMS: dict[str, ArmSpec] = {
    spec.name: spec
    for spec in (
        ArmSpec("base", False, None, "untuned model, closed-book"),
        ArmSpec("rag", True, None, "untuned model + retrieval"),
        ArmSpec("ft", False, "sft", "fine-tuned (SFT) model, closed-book"),
        ArmSpec("ft_rag", True, "sft", "fine-tuned (SFT) model + retrieval"),
        ArmSpec("raft", True, "raft", "RAFT-tuned model + retrieval"),
    )
}
DEFAULT_ARMS = tuple(ARMS)


def parse_arms(text: str | Sequence[str]) -> list[str]:
    """'base,rag' → ['base', 'rag'], validated and de-duplicated in the given order."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise InputError("no arms given (choose from " + ", ".join(ARMS) + ")")
    unknown = [n for n in names if n not in ARMS]
    if unknown:
        raise InputError(f"unknown arm {unknown[0]!r} (choose from {', '.join(ARMS)})")
    return list(dict.fromkeys(names))


def gold_doc_ids(example: Example) -> list[str]:
    """Gold documents of a question: its doc_id, or metadata['doc_ids'] for multi-document questions."""
    many = example.metadata.get("doc_ids") if example.metadata else None
    if isinstance(many, list | tuple) and many:
        return [str(d) for d in many]
    return [example.doc_id] if example.doc_id else []


def prediction_row(example: Example, prediction: Prediction, arm: str, freshness: bool = False) -> dict[str, Any]:
    """One predictions.jsonl row."""
    from ragtune.pipeline import citations

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
    retriever: Any | None,
    *,
    k: int,
    max_new_tokens: int,
    batch_size: int = 16,
    freshness: bool = False,
    on_rows: Callable[[list[dict[str, Any]]], None] | None = None,
    progress: Any = None,
) -> list[dict[str, Any]]:
    """Answer `examples` with one arm, batch by batch; `on_rows` receives each finished batch (for resume)."""
    from ragtune.pipeline import answer

    spec = ARMS[arm]
    if spec.retrieval and retriever is None:
        raise InputError(f"arm {arm!r} retrieves, but no index/retriever was given")
    rows: list[dict[str, Any]] = []
    for start in range(0, len(examples), batch_size):
        batch = list(examples[start : start + batch_size])
        t0 = time.perf_counter()
        predictions = answer(
            [e.question for e in batch],
            generator,
            retriever if spec.retrieval else None,
            k=k,
            arm=arm,
            max_new_tokens=max_new_tokens,
        )
        logger.debug("arm %s: %d questions in %.1fs", arm, len(batch), time.perf_counter() - t0)
        batch_rows = [prediction_row(e, p, arm, freshness) for e, p in zip(batch, predictions)]
        rows.extend(batch_rows)
        if on_rows is not None:
            on_rows(batch_rows)
        if progress is not None:
            progress.advance(len(batch))
    return rows
