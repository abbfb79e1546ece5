"""Reranking by query likelihood: a local causal LM reads each retrieved passage and is asked how likely the query
is to follow it (UPR, Sachan et al. 2022, "Improving Passage Retrieval with Zero-Shot Question Generation"):

    llm(q, p) = mean over the query's tokens t of  log P(t | "Passage: p" + instruction + the tokens before t),

then the first `rerank_depth` hits of a mode are reordered by the convex fusion of their own scores and llm,
each min-max normalised over those hits (ragtune.retrieve.hybrid.convex_fuse, weights 1 - w and w with
w = RetrieveConfig.rerank_weight). No reranker ships its weights in a well-kept package; this one needs only the
bundled LLM (or any local HF causal LM, RetrieveConfig.rerank_model), so it works offline.

Modes "dense+rerank", "bm25+rerank", "hybrid+rerank" and "hybrid-convex+rerank" (ragtune.retrieve.factory) wrap
the mode before the "+". It costs one forward pass over passage and query per hit reranked (no generation) —
~0.2 s a passage for the bundled 135M model on 2 CPU cores, so ~2 s per query at the default depth 10 (~4.5 s at
20): a choice for quality, not for latency (bench/bench_retrieval.py measures both).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragtune.config import RetrieveConfig
from ragtune.errors import ConfigError
from ragtune.retrieve.base import Filters, Retriever
from ragtune.retrieve.hybrid import convex_fuse
from ragtune.types import Hit

INSTRUCTION = "A search query this passage is relevant to:"  # between the passage and the query it scores
PASSAGE_TOKENS = 256  # a passage is cut to its first this many tokens
QUERY_TOKENS = 64  # and a query to its first this many
BATCH = 8  # passages scored in one forward pass
TAIL_STEP = 1e-6  # hits below the depth score the last reranked one's score less this much per place

_SCORERS: dict[str, LikelihoodScorer] = {}
_SCORERS_LOCK = threading.Lock()


class LikelihoodScorer:
    """log P(query | passage) under a local causal LM, averaged over the query's tokens."""

    def __init__(self, model_dir: str | Path, *, instruction: str = INSTRUCTION,
                 passage_tokens: int = PASSAGE_TOKENS, batch_size: int = BATCH):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else (
            self.tokenizer.eos_token_id or 0)
        self.passage_tokens = passage_tokens
        self.batch_size = batch_size
        self._head = self._ids("Passage: ")
        self._tail = self._ids("\n" + instruction)

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """One score per passage (higher: the query is likelier after it); all 0.0 for a query with no tokens."""
        words = " ".join(query.split())
        query_ids = self._ids(" " + words)[:QUERY_TOKENS] if words else []
        if not query_ids or not passages:
            return [0.0] * len(passages)
        rows = [self._head + self._ids(" ".join(p.split()))[: self.passage_tokens] + self._tail + query_ids
                for p in passages]
        scores: list[float] = []
        for start in range(0, len(rows), self.batch_size):
            scores += self._score_rows(rows[start : start + self.batch_size], query_ids)
        return scores

    def _score_rows(self, rows: list[list[int]], query_ids: list[int]) -> list[float]:
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):  # left padding: every row's query ends at the last position
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        n = len(query_ids)
        with torch.inference_mode():
            # logits only where the query's tokens are predicted: full-vocabulary logits at every position would
            # cost more than the model itself
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                                logits_to_keep=n + 1).logits[:, :n].float()
            target = torch.tensor(query_ids).expand(len(rows), n).unsqueeze(-1)
            token_lp = torch.log_softmax(logits, dim=-1).gather(-1, target).squeeze(-1)
        return token_lp.mean(-1).tolist()


def load_scorer(model: str) -> LikelihoodScorer:
    """The scorer for RetrieveConfig.rerank_model ('bundled' or a local HF causal-LM folder), loaded once per
    process; ConfigError for an http(s) endpoint (the scorer needs the model's token probabilities)."""
    if model.startswith(("http://", "https://")):
        raise ConfigError(f"a +rerank mode needs a local model (it reads token probabilities), not {model!r}: "
                          "set rerank_model to 'bundled' or a local HF folder")
    from ragtune.models import resolve_llm

    model_dir = str(resolve_llm(model))
    with _SCORERS_LOCK:
        if model_dir not in _SCORERS:
            _SCORERS[model_dir] = LikelihoodScorer(model_dir)
        return _SCORERS[model_dir]


class RerankingRetriever:
    """`inner`'s first `config.rerank_depth` hits reordered by their own scores fused with query likelihood.

    Filters go to `inner` (applied before its ranking, as always); hits below the depth keep their order after
    the reranked ones, with scores just below theirs (so they stay in that order when sorted by score, as BEIR
    evaluation does). rerank_weight 0 leaves inner's order; 1 ranks by likelihood alone."""

    def __init__(self, inner: Retriever, config: RetrieveConfig = RetrieveConfig(), scorer: Any = None):
        self.inner = inner
        self.depth = config.rerank_depth
        self.weight = config.rerank_weight
        self.model = config.rerank_model
        self._scorer = scorer

    @property
    def scorer(self) -> Any:
        if self._scorer is None:
            self._scorer = load_scorer(self.model)
        return self._scorer

    def retrieve(self, queries: list[str], k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        ranked = self.inner.retrieve(queries, k=max(k, self.depth), filters=filters)
        return [self._rerank(query, hits)[:k] for query, hits in zip(queries, ranked)]

    def _rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        head, tail = hits[: self.depth], hits[self.depth :]
        if len(head) < 2 or self.weight <= 0:
            return hits
        likelihood = self.scorer.score(query, [h.chunk.text for h in head])
        rows = list(range(len(head)))
        fused = convex_fuse([(rows, [h.score for h in head]), (rows, likelihood)], [1.0 - self.weight, self.weight])
        reranked = [Hit(head[row].chunk, score, rank) for rank, (row, score) in enumerate(fused)]
        floor = fused[-1][1]  # below it, in the mode's order: scores that stay ordered when a caller sorts by them
        return reranked + [Hit(h.chunk, floor - (i + 1) * TAIL_STEP, len(head) + i) for i, h in enumerate(tail)]
