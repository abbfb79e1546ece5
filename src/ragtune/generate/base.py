"""The Generator contract: a batch of chat-message lists in, one Generation per conversation out."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from ragtune.types import Generation

Messages = list[dict[str, str]]  # [{"role": "system"|"user"|"assistant", "content": "..."}]


@runtime_checkable
class Generator(Protocol):
    """Anything that answers chat conversations in batches (local HF model, remote endpoint, test fake)."""

    model_id: str

    def generate(self, batch: list[Messages], max_new_tokens: int = 64) -> list[Generation]:
        """One Generation(text, prompt_tokens, completion_tokens) per conversation, in the same order."""
        ...


def generate_one(generator: Generator, messages: Messages, max_new_tokens: int = 64) -> Generation:
    """Thin single-conversation wrapper over the batch API."""
    return generator.generate([messages], max_new_tokens=max_new_tokens)[0]


def generate_spans(
    generator: Generator, batch: list[Messages], max_new_tokens: int, spans_of: Sequence[Sequence[str] | None]
) -> tuple[list[Generation], bool]:
    """Replies that are spans of each conversation's passages (`spans_of`, None: none, answer freely): decoded
    under the span constraint where the generator can (`constrains_spans` True, as a local model: then
    `generate(..., spans_of=)`, and True), else generated freely (False: the caller snaps each reply to its
    passages, ragtune.generate.extract.snap_to_sources)."""
    if getattr(generator, "constrains_spans", False):
        return generator.generate(batch, max_new_tokens=max_new_tokens, spans_of=spans_of), True  # type: ignore[call-arg]
    return generator.generate(batch, max_new_tokens=max_new_tokens), False


def _takes(generator: Generator, keyword: str) -> bool:
    """Whether `generator.generate` accepts `keyword` (an optional ability of a local model)."""
    try:
        return keyword in inspect.signature(generator.generate).parameters
    except (TypeError, ValueError):  # a callable without a readable signature
        return False


def generate_until(
    generator: Generator, batch: list[Messages], max_new_tokens: int, done: Callable[[str], bool]
) -> list[Generation]:
    """`generator.generate`, ending each row once `done(its reply so far)` where the generator can (a local model:
    `generate(..., done=)`); others generate to their own end. Only for callers that cut every reply at the point
    `done` marks, so the result is the same either way, only sooner."""
    if _takes(generator, "done"):
        return generator.generate(batch, max_new_tokens=max_new_tokens, done=done)  # type: ignore[call-arg]
    return generator.generate(batch, max_new_tokens=max_new_tokens)
