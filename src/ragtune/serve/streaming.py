"""Token streaming for one conversation, without leaving the shared answer path.

`StreamingGenerator` wraps a loaded generator for a single streamed request: `pipeline.answer_from_hits` calls its
`generate` exactly as it calls the plain generator (same prompt, same parsing, same citations), and text
pieces reach `on_text` while the model decodes. Streaming needs a local Hugging Face model (an object with
`.model` and `.tokenizer`, like `HFGenerator`); any other generator (remote endpoint, test fake) answers in
one piece and the route falls back to streaming the finished answer in word pieces.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ragtune.types import Generation


def can_stream(generator: Any) -> bool:
    """Whether token streaming is possible: a local transformers model the generator exposes."""
    return hasattr(getattr(generator, "model", None), "generate") and getattr(generator, "tokenizer", None) is not None


def _streamer(tokenizer: Any, on_text: Callable[[str], Any]) -> Any:
    from transformers import TextStreamer

    class _CallbackStreamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                on_text(text)

    return _CallbackStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


class StreamingGenerator:
    """A one-conversation view of `inner` whose decoded text is pushed to `on_text` as it is generated.

    Only the generation worker thread uses a model, so routing `model.generate` through a streamer for the
    duration of one call cannot affect another request.
    """

    def __init__(self, inner: Any, on_text: Callable[[str], Any]):
        self.inner = inner
        self.on_text = on_text
        self.model_id = inner.model_id
        self.batch_size = 1
        self.constrains_spans = getattr(inner, "constrains_spans", False)

    def generate(self, batch: list[Any], max_new_tokens: int = 64, *, spans_of: Any = None) -> list[Generation]:
        """Same as the inner generator; streams when it is a local HF model and the batch holds one conversation.
        `spans_of` (span answers) goes on to an inner generator that constrains spans."""
        options = {"spans_of": spans_of} if spans_of is not None and self.constrains_spans else {}
        if len(batch) != 1 or not can_stream(self.inner):
            return self.inner.generate(batch, max_new_tokens=max_new_tokens, **options)
        model = self.inner.model
        streamer = _streamer(self.inner.tokenizer, self.on_text)
        model.generate = functools.partial(type(model).generate, model, streamer=streamer)
        try:
            return self.inner.generate(batch, max_new_tokens=max_new_tokens, **options)
        finally:
            del model.generate  # back to the class's method
