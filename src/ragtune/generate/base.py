"""The Generator contract: a batch of chat-message lists in, one Generation per conversation out."""

from __future__ import annotations

import inspect
from collections.abc import Callable
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


def generate_until(
    generator: Generator, batch: list[Messages], max_new_tokens: int, done: Callable[[str], bool]
) -> list[Generation]:
    """`generator.generate`, ending each row once `done(its reply so far)` where the generator can (a local model:
    `generate(..., done=)`); others generate to their own end. Only for callers that cut every reply at the point
    `done` marks, so the result is the same either way, only sooner."""
    try:
        stops_early = "done" in inspect.signature(generator.generate).parameters
    except (TypeError, ValueError):  # a callable without a readable signature
        stops_early = False
    if stops_early:
        return generator.generate(batch, max_new_tokens=max_new_tokens, done=done)  # type: ignore[call-arg]
    return generator.generate(batch, max_new_tokens=max_new_tokens)
