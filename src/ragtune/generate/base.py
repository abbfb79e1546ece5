"""The Generator contract: a batch of chat-message lists in, one Generation per conversation out."""

from __future__ import annotations

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
