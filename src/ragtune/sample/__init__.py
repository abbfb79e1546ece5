"""The shipped sample corpus: the handbook of the (fictional) Marrowgate Institute for Coastal Science.

Paths and question sets for the demo, tests and docs. See README.md in this folder for what each file holds.

>>> from ragtune.sample import handbook_dir, load_questions
>>> train = load_questions("train")            # 60 Examples; qid "q001", doc_id "policies/leave.md", ...
>>> index_me = handbook_dir()                  # 30 documents: .md, .txt, .html, .pdf

Only the standard library is imported here; nothing is read until a function is called.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.errors import InputError
from ragtune.types import Example

SAMPLE_DIR = Path(__file__).resolve().parent
SPLITS = ("train", "test")

__all__ = [
    "SAMPLE_DIR",
    "InjectionLabel",
    "handbook_dir",
    "injection_dir",
    "load_injection_labels",
    "load_multihop",
    "load_questions",
    "load_update_questions",
    "updates_dir",
]


@dataclass(frozen=True)
class InjectionLabel:
    """Ground truth for one document of injection/: is it a prompt-injection attempt, and of which kind."""

    doc_id: str  # file name inside injection_dir(), e.g. "canteen-menu.md"
    injected: bool
    pattern: str  # e.g. "ignore_previous_instructions"; benign lookalikes use "benign_*"
    trigger: str = ""  # an exact substring of the injected text ("" for benign documents)


def handbook_dir() -> Path:
    """The 30-document handbook to ingest; doc ids are paths relative to it, e.g. "policies/leave.md"."""
    return SAMPLE_DIR / "handbook"


def updates_dir() -> Path:
    """The freshness set: 6 revised documents at the same relative paths as the handbook files they replace."""
    return SAMPLE_DIR / "updates" / "handbook"


def injection_dir() -> Path:
    """8 prompt-injection documents and 8 benign lookalikes (.md), with labels.jsonl beside them."""
    return SAMPLE_DIR / "injection"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
    return rows


def _example(row: dict[str, Any], doc_id: str, **extra: Any) -> Example:
    metadata = {key: value for key, value in row.items() if key not in {"id", "question", "answer", "answers"}}
    metadata.pop("doc_id", None)
    metadata.update(extra)
    return Example(
        question=row["question"],
        answer=row["answer"],
        doc_id=doc_id,
        answers=tuple(row["answers"]),
        qid=row["id"],
        metadata=metadata,
    )


def load_questions(split: str | None = None, *, with_paraphrases: bool = False) -> list[Example]:
    """The 90 single-document questions (60 train, 30 test), or one split of them.

    metadata holds "split", "evidence" (the supporting sentence) and "paraphrases" (two rewordings for train
    questions, [] for test). With `with_paraphrases=True` each train question is followed by one Example per
    paraphrase (qid "q001-p1", "q001-p2"; metadata "paraphrase_of": "q001"), for knowledge-injection training.
    """
    if split is not None and split not in SPLITS:
        raise InputError(f"split must be one of {SPLITS} or None, got {split!r}")
    examples = []
    for row in _read_jsonl(SAMPLE_DIR / "questions.jsonl"):
        if split is not None and row["split"] != split:
            continue
        examples.append(_example(row, row["doc_id"]))
        if with_paraphrases:
            for number, paraphrase in enumerate(row.get("paraphrases", []), 1):
                variant = dict(row, id=f"{row['id']}-p{number}", question=paraphrase)
                examples.append(_example(variant, row["doc_id"], paraphrase_of=row["id"]))
    return examples


def load_update_questions() -> list[Example]:
    """12 questions whose answers changed in updates/; metadata "old_answer" and "supersedes" (the qid asked
    with the old value in questions.jsonl, same wording)."""
    return [_example(row, row["doc_id"]) for row in _read_jsonl(SAMPLE_DIR / "updates" / "questions.jsonl")]


def load_multihop() -> list[Example]:
    """20 questions that need two handbook documents; doc_id is "" and metadata "doc_ids"/"evidence" hold
    both gold documents and their supporting sentences, in reasoning order."""
    return [_example(row, "") for row in _read_jsonl(SAMPLE_DIR / "multihop.jsonl")]


def load_injection_labels() -> list[InjectionLabel]:
    """The labels of injection_dir(), one per .md document there."""
    return [InjectionLabel(**row) for row in _read_jsonl(injection_dir() / "labels.jsonl")]
