"""Typed records that travel between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Document:
    """One source document before chunking."""

    doc_id: str
    text: str
    title: str = ""
    source: str = ""  # path or URL it came from
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A retrievable piece of a document."""

    chunk_id: str  # f"{doc_id}#{position}"
    doc_id: str
    text: str
    title: str = ""
    position: int = 0  # index of the chunk within its document
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """A chunk returned by a retriever, with its score and 0-based rank."""

    chunk: Chunk
    score: float
    rank: int = 0


@dataclass(frozen=True)
class Example:
    """A question/answer pair for training or evaluation; gold passage optional."""

    question: str
    answer: str
    doc_id: str = ""
    chunk_id: str = ""
    context: str = ""
    answers: tuple[str, ...] = ()  # all acceptable gold answers (SQuAD has several)
    qid: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def gold_answers(self) -> tuple[str, ...]:
        return self.answers or (self.answer,)


@dataclass(frozen=True)
class Generation:
    """One generated completion."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Prediction:
    """An answer to one question by one arm, with its sources and timings."""

    question: str
    answer: str
    hits: tuple[Hit, ...] = ()
    cited: tuple[int, ...] = ()  # 1-based source numbers the answer cites
    retrieve_ms: float = 0.0
    generate_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    arm: str = ""
    qid: str = ""
    answer_tokens: int | None = None  # the kept answer's own completion tokens when several were generated, else None

    @property
    def kept_answer_tokens(self) -> int:
        """Tokens the kept answer was generated in (completion_tokens counts every generation paid for)."""
        return self.completion_tokens if self.answer_tokens is None else self.answer_tokens


class Embedder(Protocol):
    """Anything that encodes texts into L2-normalised vectors: `encode(texts) -> (n, d) float32`.

    The index's embedder (ragtune.index.embed) is one; answer compression and semantic scoring take any.
    """

    def encode(self, texts: list[str]) -> np.ndarray: ...
