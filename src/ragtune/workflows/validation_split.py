"""The validation questions a search tunes on, kept apart from the test questions it is judged on, by document.

Two sources (split.json's "validation_source"):
- "split": the user's questions are divided by document. Questions about the same document stay on one side,
  so a setting chosen on validation is never scored on a question whose passage it was tuned on. Questions
  with several gold documents join those documents' groups; a question with no gold document is a group of
  its own.
- "synth": every user question is a test question, and validation questions are synthesised from the corpus
  with the product's own synthesis (ragtune.train.synth, rule-written questions: no model, seconds), only
  from documents that hold no gold of a test question. `ragtune tune` without --questions has no test
  questions: every document may be used.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any, Literal

from ragtune.errors import InputError
from ragtune.evaluate.harness import gold_doc_ids
from ragtune.types import Example

DEFAULT_VALIDATION_SHARE = 0.3
ValidationSource = Literal["split", "synth"]
DEFAULT_SYNTH_QUESTIONS = 40  # synthesised validation questions when there are no test questions to size them by
MIN_SYNTH_QUESTIONS = 10  # fewer make a trial's F1 mostly noise
SYNTH_PER_CHUNK = 2  # as compare --train synthesises its training questions (workflows.train_arms)


@dataclass(frozen=True)
class Split:
    """Validation and test questions (in the order given), and how they were drawn."""

    validation: list[Example]
    test: list[Example]
    seed: int
    validation_share: float
    groups: int  # document groups the questions fell into (synth: documents the validation questions are about)
    source: ValidationSource = "split"
    synth: dict[str, Any] | None = None  # with source "synth": how the validation questions were made

    def to_dict(self) -> dict[str, Any]:
        """split.json: where validation came from, which question ids are validation and which are test."""
        out = {"by": "document", "validation_source": self.source, "seed": self.seed,
               "validation_share": self.validation_share, "groups": self.groups}
        if self.synth is not None:
            out["synth"] = self.synth
        return {**out, "validation": [e.qid for e in self.validation], "test": [e.qid for e in self.test]}


def split_by_document(examples: list[Example], share: float = DEFAULT_VALIDATION_SHARE, seed: int = 0) -> Split:
    """About `share` of the questions for validation, whole document groups at a time, drawn with `seed`.

    InputError when the questions cannot be split: fewer than two document groups.
    """
    if not 0 < share < 1:
        raise InputError(f"validation share must be between 0 and 1, got {share}")
    groups = _document_groups(examples)
    if len(groups) < 2:
        raise InputError(f"cannot split {len(examples)} question(s) into validation and test by document: they "
                         f"are about {len(groups)} document group(s), at least 2 are needed (add questions)")
    order = sorted(groups)  # a stable order before the seeded shuffle
    random.Random(seed).shuffle(order)
    target = max(1, round(share * len(examples)))
    chosen: set[int] = set()
    count = 0
    for group in order[:-1]:  # the last group always stays in test
        if count >= target:
            break
        chosen.add(group)
        count += len(groups[group])
    validation_ids = {i for g in chosen for i in groups[g]}
    return Split(validation=[e for i, e in enumerate(examples) if i in validation_ids],
                 test=[e for i, e in enumerate(examples) if i not in validation_ids],
                 seed=seed, validation_share=share, groups=len(groups))


def _document_groups(examples: list[Example]) -> dict[int, list[int]]:
    """{group: [example positions]}: questions joined when they share a gold document (union-find)."""
    parent = list(range(len(examples)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[str, int] = {}
    for i, example in enumerate(examples):
        for doc in gold_doc_ids(example):
            if doc in first_with:
                parent[root(i)] = root(first_with[doc])
            else:
                first_with[doc] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(examples)):
        groups.setdefault(root(i), []).append(i)
    return groups


def synth_size(test_questions: int, share: float, requested: int | None = None) -> int:
    """How many validation questions to synthesise: `requested`, else as many as a split with `share` would
    hold beside `test_questions` (at least MIN_SYNTH_QUESTIONS), else DEFAULT_SYNTH_QUESTIONS without a test.

    >>> synth_size(70, 0.3), synth_size(8, 0.3), synth_size(0, 0.3), synth_size(70, 0.3, requested=5)
    (30, 10, 40, 5)
    """
    if requested is not None:
        return requested
    if not test_questions:
        return DEFAULT_SYNTH_QUESTIONS
    return max(MIN_SYNTH_QUESTIONS, round(share / (1 - share) * test_questions))


def free_documents(index: Any, test: list[Example]) -> list[str]:
    """The ids of the index's documents that hold no gold of a `test` question; InputError when there are none."""
    gold = {d for e in test for d in gold_doc_ids(e)}
    free = [d.doc_id for d in index.documents() if d.doc_id not in gold]
    if not free:
        raise InputError(f"cannot synthesise validation questions: every one of the index's {len(gold)} "
                         "document(s) holds the gold of a test question (add documents, or split the questions: "
                         "--validation split)")
    return free


def synthesize_validation(index: Any, test: list[Example], *, questions: int, seed: int = 0,
                          share: float = DEFAULT_VALIDATION_SHARE) -> Split:
    """About `questions` rule-written questions synthesised from the chunks of documents free of `test`'s gold
    (chunks drawn in a seeded order); `test` is kept whole.

    InputError when no such document exists or no question could be synthesised from them.
    """
    from ragtune.train.synth import synthesize_qa

    free = set(free_documents(index, test))
    chunks = sorted((c for c in index.chunks() if c.doc_id in free), key=lambda c: c.chunk_id)
    random.Random(seed).shuffle(chunks)
    found: list[Example] = []
    seen: set[str] = set()
    step = max(2 * questions, 32)  # chunks per synthesis call: usually one call is enough
    for start in range(0, len(chunks), step):
        # Paraphrases are left out: a reworded copy of a validation question adds no new fact to tune on.
        result = synthesize_qa(chunks[start : start + step], None, per_chunk=SYNTH_PER_CHUNK, seed=seed,
                               questions="rules")
        for example in result.examples:
            key = " ".join(example.question.lower().split())
            if key not in seen:
                seen.add(key)
                found.append(example)
        if len(found) >= questions:
            break
    if not found:
        raise InputError(f"no validation question could be synthesised from the {len(free)} document(s) that "
                         "hold no gold of a test question (pass --questions with your own, or --validation split)")
    validation = [replace(e, qid=f"synth-{i:05d}") for i, e in enumerate(_across_documents(found)[:questions])]
    used = {e.doc_id for e in validation}
    excluded = len({d.doc_id for d in index.documents()}) - len(free)
    synth = {"method": "rules", "per_chunk": SYNTH_PER_CHUNK, "asked": questions, "documents_free": len(free),
             "documents_used": len(used), "documents_excluded": excluded,
             "test_without_gold": sum(1 for e in test if not gold_doc_ids(e))}
    return Split(validation=validation, test=list(test), seed=seed, validation_share=share, groups=len(used),
                 source="synth", synth=synth)


def _across_documents(examples: list[Example]) -> list[Example]:
    """`examples` reordered round-robin over their documents (each document's first question, then each one's
    second, ...), so a validation set cut short covers as many documents as it can."""
    by_doc: dict[str, list[Example]] = {}
    for example in examples:
        by_doc.setdefault(example.doc_id, []).append(example)
    rounds = max((len(group) for group in by_doc.values()), default=0)
    return [group[i] for i in range(rounds) for group in by_doc.values() if i < len(group)]
