"""BM25 over chunk texts with bm25s (Lucene scoring by default), PyStemmer stemming and English stopwords.

The sparse score matrix is rebuilt from the chunk texts when an index state is first searched: bm25s
indexes ~100k short chunks in a few seconds on this machine (bench/bench_latency.py prints the figure),
which is cheaper than keeping a second on-disk format in step with every commit.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ragtune.config import BM25Config
from ragtune.index.dense import top_k_rows

logger = logging.getLogger(__name__)


class BM25Index:
    """Lexical scores for every chunk; rows align with the index state's chunks."""

    def __init__(self, texts: list[str], config: BM25Config = BM25Config()):
        import bm25s

        # bm25s sets its own logger to DEBUG, so every build printed "Building index from IDs objects".
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        self.config = config
        self.n = len(texts)
        self._stemmer = load_stemmer(config.stemmer)
        self._retriever: Any = None
        if self.n == 0:
            return
        tokens = bm25s.tokenize(
            texts, stopwords=config.stopwords, stemmer=self._stemmer, return_ids=True, show_progress=False
        )
        retriever = bm25s.BM25(method=config.method, k1=config.k1, b=config.b)
        retriever.index(tokens, show_progress=False)
        self._retriever = retriever

    def __len__(self) -> int:
        return self.n

    def _query_tokens(self, queries: list[str]) -> list[list[str]]:
        return analyze(queries, self.config, self._stemmer)

    def scores(self, queries: list[str]) -> np.ndarray:
        """(n_queries, n_chunks) float32 BM25 scores; a query with no known term scores 0 everywhere."""
        out = np.zeros((len(queries), self.n), dtype=np.float32)
        if self.n == 0:
            return out
        for i, tokens in enumerate(self._query_tokens(queries)):
            ids = self._retriever.get_tokens_ids([t for t in tokens if t])
            if ids:
                out[i] = self._retriever.get_scores_from_ids(ids)
        return out

    def search(self, queries: list[str], k: int, mask: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top-k (rows, scores) per query among rows with a positive score (and mask, applied before ranking)."""
        results = []
        for row in self.scores(queries):
            row[row <= 0] = -np.inf  # no matching term: not a hit
            if mask is not None:
                row[~mask] = -np.inf
            results.append(top_k_rows(row, k))
        return results


def analyze(texts: list[str], config: BM25Config = BM25Config(), stemmer: Any = None) -> list[list[str]]:
    """The terms BM25 sees in each text: bm25s's tokenizer (lowercase words of 2+ characters), stopwords removed,
    stemmed — what the folder index ranks with; a server store without a stemming analyzer indexes these too.

    >>> analyze(["The running dogs ran"])
    [['run', 'dog', 'ran']]
    """
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    if not texts:
        return []
    return bm25s.tokenize(list(texts), stopwords=config.stopwords, stemmer=stemmer or load_stemmer(config.stemmer),
                          return_ids=False, show_progress=False)


def term_texts(settings: dict[str, Any]) -> Any:
    """A function texts -> each text's `analyze` terms joined by spaces, for an engine that indexes them as given
    (Milvus Lite's BM25 cannot stem); settings hold BM25Config's `stemmer` and `stopwords`.

    >>> term_texts({"stemmer": "english", "stopwords": "en"})(["The running dogs"])
    ['run dog']
    """
    config = BM25Config(stemmer=settings.get("stemmer"), stopwords=settings.get("stopwords"))
    stem = load_stemmer(config.stemmer)
    return lambda texts: [" ".join(terms) for terms in analyze(texts, config, stem)]


def load_stemmer(language: str | None) -> Any:
    if not language:
        return None
    import Stemmer

    try:
        stemmer = Stemmer.Stemmer(language)
    except KeyError as exc:
        from ragtune.errors import ConfigError

        raise ConfigError(f"unknown stemmer language {language!r}: {sorted(Stemmer.algorithms())}") from exc
    return stemmer.stemWords
