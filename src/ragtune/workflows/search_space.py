"""What `ragtune tune` and `compare --search` may change for each arm, declared as data in this one place.

For arms that retrieve: the chunk size (another size answers from an index re-chunked into the search folder,
ragtune.workflows.chunk_indexes), the retrieval mode and k; for every arm, how hits become an answer (sentences
kept per passage, prompt style, answer length). For arms that carry an adapter (ft, ft_rag: sft; raft, raft_tr:
raft), when the search trains it (`--train`, no adapter given), its training settings too: epochs and learning
rate (`space_for(arm, train=True)`); each distinct pair is one adapter, trained once into the search folder within
the training budget (ragtune.workflows.trained_adapters). An adapter the user gives is answered with as it is: its
training settings are not searched. Each arm's own default settings (the index's own chunk size, the epochs and
learning rate it is trained with) are always part of its space, so "searched" can never be worse than "default" on
validation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ragtune.arms import ARMS
from ragtune.config import ChunkConfig
from ragtune.errors import ConfigError
from ragtune.pipeline import AnswerSettings

Choice = str | int | float


@dataclass(frozen=True)
class Param:
    """One searched setting and the values it may take."""

    name: str
    choices: tuple[Choice, ...]
    help: str


@dataclass(frozen=True)
class SearchSpace:
    """The settings searched for one arm: a small categorical grid."""

    params: tuple[Param, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def size(self) -> int:
        """The number of distinct configurations (the grid's size)."""
        return math.prod(len(p.choices) for p in self.params)

    def grid(self) -> dict[str, list[Choice]]:
        """{name: choices}, as optuna's GridSampler and CategoricalDistribution take them."""
        return {p.name: list(p.choices) for p in self.params}

    def including(self, params: Mapping[str, Any]) -> SearchSpace:
        """This space with each value of `params` (an arm's defaults) added to its setting's choices when absent."""
        missing = [n for n in self.names if n not in params]
        if missing:
            raise ConfigError(f"default settings lack {missing} of the search space {list(self.names)}")
        return SearchSpace(tuple(
            p if params[p.name] in p.choices else Param(p.name, (params[p.name], *p.choices), p.help)
            for p in self.params
        ))

    def describe(self) -> dict[str, list[Choice]]:
        """The JSON form written to best.json and results.json."""
        return self.grid()


RETRIEVAL = (
    # The index's own chunk size joins these as the default (SearchSpace.including).
    Param("chunk_tokens", (128, 320), "tokens per chunk: another size than the index's re-chunks its documents"),
    Param("mode", ("hybrid", "hybrid-convex", "dense", "bm25"), "retrieval mode (ragtune.retrieve)"),
    Param("k", (3, 5), "passages retrieved per question"),
    Param("context_sentences", (3, 0), "sentences kept per passage, closest to the question (0: whole passages)"),
    # free-or-span first: the one-at-a-time sweep tries each setting's first other value before any second one
    Param("answer_form", ("free", "free-or-span", "snap", "span"),
          "free-or-span: an answer no passage shown holds decoded again as a span of them; snap: the answer "
          "replaced by the closest span of the passages shown; span: decoded as one"),
    Param("answer_pick", ("joint", "evidence"),
          "evidence: also answer from each passage alone and keep the answer best backed by a sentence"),
)
ANSWER = (
    Param("prompt_style", ("guided", "plain"), "guided: worked examples before the question"),
    Param("max_new_tokens", (32, 64), "longest answer generated"),
)

# By adapter kind: the arm's own epochs (train_arms.DEFAULT_EPOCHS, or --train-epochs) and learning rate join
# these as its defaults. Closed-book facts (sft) need many epochs; reading from passages (raft) a few.
TRAINING: dict[str, tuple[Param, ...]] = {
    "sft": (Param("epochs", (5, 20), "passes over the training questions"),
            Param("lr", (3e-4, 3e-3), "the LoRA learning rate")),
    "raft": (Param("epochs", (1, 4), "passes over the training questions"),
             Param("lr", (3e-4, 3e-3), "the LoRA learning rate")),
}
TRAINING_SETTINGS = ("epochs", "lr")  # the names of TRAINING's settings: the adapter a configuration answers with

# Arms that retrieve search retrieval and answering; closed-book arms only how they answer.
SEARCH_SPACES: dict[str, SearchSpace] = {
    name: SearchSpace(RETRIEVAL + ANSWER if spec.retrieval else ANSWER) for name, spec in ARMS.items()
}


def space_for(arm: str, *, train: bool = False) -> SearchSpace:
    """The search space of `arm` (an arm name of ragtune.arms.ARMS); with `train` (the search trains the arm's
    adapter) its training settings too, for an arm that carries an adapter."""
    if arm not in SEARCH_SPACES:
        raise ConfigError(f"no search space for arm {arm!r} (arms: {', '.join(ARMS)})")
    kind = ARMS[arm].adapter
    if train and kind is not None:
        return SearchSpace(SEARCH_SPACES[arm].params + TRAINING[kind])
    return SEARCH_SPACES[arm]


def default_params(arm: str, *, mode: str, k: int, prompt_style: str, context_sentences: int,
                   max_new_tokens: int, answer_form: str = "free", answer_pick: str = "joint",
                   chunk_tokens: int = ChunkConfig().chunk_tokens,
                   training: Mapping[str, Choice] | None = None) -> dict[str, Choice]:
    """The settings `arm` runs with when nothing is searched, restricted to its space's names (`chunk_tokens`:
    the index's own chunk size; `training`: {"epochs", "lr"} its adapter is trained with when the search trains it).

    >>> default_params("base", mode="hybrid", k=3, prompt_style="guided", context_sentences=3, max_new_tokens=64)
    {'prompt_style': 'guided', 'max_new_tokens': 64}
    >>> default_params("ft", mode="hybrid", k=3, prompt_style="plain", context_sentences=0, max_new_tokens=32,
    ...                training={"epochs": 10, "lr": 0.001})
    {'prompt_style': 'plain', 'max_new_tokens': 32, 'epochs': 10, 'lr': 0.001}
    """
    every = {"chunk_tokens": chunk_tokens, "mode": mode, "k": k, "context_sentences": context_sentences,
             "prompt_style": prompt_style, "max_new_tokens": max_new_tokens, "answer_form": answer_form,
             "answer_pick": answer_pick,
             **(training or {})}
    return {name: every[name] for name in space_for(arm, train=training is not None).names}


def training_params(params: Mapping[str, Any]) -> tuple[int, float] | None:
    """(epochs, lr) of a configuration that trains its adapter, else None."""
    if "epochs" not in params:
        return None
    return int(params["epochs"]), float(params["lr"])


def chunk_config(chunk_tokens: int, own: ChunkConfig) -> ChunkConfig:
    """The chunking of a searched chunk size: the index's `own` at its size, else its overlap scaled in proportion
    (the default 200/32 gives 128 -> 20, 320 -> 51).

    >>> chunk_config(128, ChunkConfig()).overlap_tokens, chunk_config(320, ChunkConfig()).overlap_tokens
    (20, 51)
    """
    if chunk_tokens == own.chunk_tokens:
        return own
    overlap = round(chunk_tokens * own.overlap_tokens / own.chunk_tokens)
    return ChunkConfig(chunk_tokens=chunk_tokens, overlap_tokens=min(overlap, chunk_tokens - 1))


ANSWER_SETTINGS = ("prompt_style", "context_sentences", "max_new_tokens", "answer_form", "answer_pick")  # AnswerSettings fields searched


def with_params(settings: AnswerSettings, params: Mapping[str, Any]) -> AnswerSettings:
    """`settings` with the answer settings a configuration chooses (retrieval mode and k are the retriever's)."""
    return replace(settings, **{name: params[name] for name in ANSWER_SETTINGS if name in params})
