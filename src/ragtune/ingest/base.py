"""Records and contracts of the ingestion stage: what a loader reports, what chunking needs from a tokenizer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ragtune.progress import progress_task
from ragtune.types import Document


@dataclass(frozen=True)
class Skipped:
    """One skipped file or JSON line, reported one line each by the CLI."""

    path: str  # the file path; with ":LINE" for a bad line in a .jsonl
    reason: str  # short human reason, e.g. "binary file", "empty"


@dataclass(frozen=True)
class LoadResult:
    """Everything `load_documents` found: the documents loaded and what was skipped, with why."""

    documents: list[Document]
    skipped: list[Skipped]

    @classmethod
    def of(cls, items: Iterable[Document | Skipped]) -> LoadResult:
        """The documents and skip reports of a stream such as `iter_documents`, each in stream order."""
        documents: list[Document] = []
        skipped: list[Skipped] = []
        for item in items:
            (documents if isinstance(item, Document) else skipped).append(item)
        return cls(documents=documents, skipped=skipped)


@runtime_checkable
class TokenCounter(Protocol):
    """What chunking needs from a tokenizer: counts (batched) and token character spans, no special tokens.

    An implementation may also set `additive = True` when the count of texts joined by whitespace always
    equals the sum of their counts (true of WordPiece/BERT); chunking then skips its final recount.
    """

    def count(self, text: str) -> int:
        """Number of tokens in `text`."""
        ...

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        """Number of tokens in each text; one tokenizer call for the whole batch."""
        ...

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """(start, end) character span of each token of `text`, in order."""
        ...


class SkipFile(Exception):
    """Raised inside a loader to skip the current file; the reason becomes a `Skipped` record."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _NoTask:
    def advance(self, n: float = 1) -> None:
        pass

    def update(self, **kwargs: Any) -> None:
        pass


@contextlib.contextmanager
def bulk_progress(description: str, total: float, minimum: float) -> Iterator[Any]:
    """`progress_task`, but silent for small jobs (one document updated by the server needs no bar)."""
    if total < minimum:
        yield _NoTask()
        return
    with progress_task(description, total=total) as task:
        yield task
