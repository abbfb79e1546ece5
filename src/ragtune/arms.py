"""The arms of a comparison — which model an arm uses and whether it retrieves — shared by compare and serve."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ragtune.errors import InputError


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
    """'base,rag' → ['base', 'rag'], validated and de-duplicated in the given order.

    >>> parse_arms("rag, base,rag")
    ['rag', 'base']
    """
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise InputError("no arms given (choose from " + ", ".join(ARMS) + ")")
    unknown = [n for n in names if n not in ARMS]
    if unknown:
        raise InputError(f"unknown arm {unknown[0]!r} (choose from {', '.join(ARMS)})")
    return list(dict.fromkeys(names))
