"""Token counting with the embedder's own tokenizer (the `tokenizers` library only: fast, no transformers)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragtune.config import BUNDLED
from ragtune.errors import ConfigError


class HFTokenCounter:
    """A `tokenizers.Tokenizer` counting tokens without special tokens, padding or truncation."""

    def __init__(self, tokenizer: Any):
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        # WordPiece behind BERT's pre-tokenizer never merges across whitespace, so the count of texts
        # joined by whitespace is the sum of their counts; chunking then needs no recount.
        self.additive = type(tokenizer.model).__name__ == "WordPiece" and type(tokenizer.pre_tokenizer).__name__ in (
            "BertPreTokenizer",
            "Whitespace",
            "WhitespaceSplit",
        )

    @classmethod
    def from_file(cls, path: str | Path) -> HFTokenCounter:
        """Load a `tokenizer.json` file."""
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(path)))

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return [tuple(o) for o in self._tokenizer.encode(text, add_special_tokens=False).offsets]


class WhitespaceTokenCounter:
    """A tokenizer-free counter: one token per run of non-space characters. For tests and quick estimates."""

    _TOKEN = re.compile(r"\S+")
    additive = True

    def count(self, text: str) -> int:
        return sum(1 for _ in self._TOKEN.finditer(text))

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        return [self.count(t) for t in texts]

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self._TOKEN.finditer(text)]


@functools.lru_cache(maxsize=8)
def _load_cached(path: str) -> HFTokenCounter:
    return HFTokenCounter.from_file(path)


def load_tokenizer(embedder: str = BUNDLED) -> HFTokenCounter:
    """The embedder's own tokenizer as a `TokenCounter`, cached per process.

    `embedder` is 'bundled' (all-MiniLM-L6-v2) or a local sentence-transformers / HF folder holding
    a `tokenizer.json`.

    >>> load_tokenizer().count("Hello world.")
    3
    """
    from ragtune.models import resolve_embedder

    path = resolve_embedder(embedder) / "tokenizer.json"
    if not path.is_file():
        raise ConfigError(f"no tokenizer.json in the embedding model folder: {str(path.parent)!r}")
    return _load_cached(str(path.resolve()))
