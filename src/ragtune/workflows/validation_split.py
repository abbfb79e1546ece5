"""Splitting the user's questions into a validation part (searched on) and a test part (reported), by document.

Questions about the same document stay on one side, so a setting chosen on validation is never scored on a
question whose passage it was tuned on. Questions with several gold documents join those documents' groups;
a question with no gold document is a group of its own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ragtune.errors import InputError
from ragtune.evaluate.harness import gold_doc_ids
from ragtune.types import Example

DEFAULT_VALIDATION_SHARE = 0.3


@dataclass(frozen=True)
class Split:
    """Validation and test questions (in the order given), and how they were drawn."""

    validation: list[Example]
    test: list[Example]
    seed: int
    validation_share: float
    groups: int  # document groups the questions fell into

    def to_dict(self) -> dict[str, Any]:
        """split.json: which question ids are validation and which are test."""
        return {"by": "document", "seed": self.seed, "validation_share": self.validation_share,
                "groups": self.groups, "validation": [e.qid for e in self.validation],
                "test": [e.qid for e in self.test]}


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
