"""Token counting with the embedder's own tokenizer (the `tokenizers` library only: fast, no transformers)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragtune.config import BUNDLED
from ragtune.errors import ConfigError


# Python's str.split() also splits on these control characters; the tokenizer's normaliser deletes them.
_NOT_TOKENIZER_SPACE = re.compile("[\x0b\x0c\x1c-\x1f\x85]")
WORD_CACHE_MAX = 500_000  # distinct words remembered per tokenizer (a few tens of MB at most)


class HFTokenCounter:
    """A `tokenizers.Tokenizer` counting tokens without special tokens, padding or truncation.

    For an additive tokenizer (see below) `count_batch` counts each distinct word once and sums: natural
    text repeats its words, so a big file costs one tokenizer call per new word, not per occurrence
    (about 10x faster on a 30 MB text than encoding every sentence).
    """

    def __init__(self, tokenizer: Any):
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._word_tokens: dict[str, int] = {}
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
        if not self.additive:
            return self._encode_counts(texts)
        words = [text.split() if not _NOT_TOKENIZER_SPACE.search(text) else None for text in texts]
        cache = self._word_tokens
        new = list({w for ws in words if ws is not None for w in ws if w not in cache})
        if new:
            if len(cache) + len(new) > WORD_CACHE_MAX:
                cache.clear()
            cache.update(zip(new, self._encode_counts(new), strict=True))
        exact = [t for t, ws in zip(texts, words, strict=True) if ws is None]
        exact_counts = iter(self._encode_counts(exact) if exact else [])
        return [next(exact_counts) if ws is None else sum(map(cache.__getitem__, ws)) for ws in words]

    def _encode_counts(self, texts: Sequence[str]) -> list[int]:
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
