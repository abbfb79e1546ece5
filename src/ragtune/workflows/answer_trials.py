"""The trial runner of `tune` and `compare --search`: one arm answers the validation questions with one
configuration through the one answer path (ragtune.evaluate.harness.run_arm: `retrieve` + `answer_from_hits`),
scored by token F1 — the metric `compare` reports.

A configuration with training settings (epochs, lr: ragtune.workflows.search_space.TRAINING) answers with the
adapter trained with them (ragtune.workflows.trained_adapters: trained once, then reused); one whose training
would exceed the budget, or whose chunk size cannot be built, is TrialSkipped with the reason. Given `report`,
the runner hands the running figures to it after each batch of questions (the search's pruner may stop it there).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ragtune.arms import ARMS
from ragtune.config import GenerateConfig
from ragtune.errors import InputError
from ragtune.evaluate.answer_metrics import exact_match_batch, f1_batch
from ragtune.evaluate.efficiency import latency_summary
from ragtune.evaluate.harness import run_arm
from ragtune.pipeline import AnswerSettings
from ragtune.types import Example
from ragtune.workflows.chunk_indexes import ChunkIndexes, doc_level_gold
from ragtune.workflows.trial_types import Report, TrialMetrics, TrialSkipped, params_key
from ragtune.workflows.search_space import Choice, training_params, with_params
from ragtune.workflows.trained_adapters import OverBudget, TrainedAdapters


class AnswerTrials:
    """A TrialRunner over the one answer path: `arm` answers `examples` with a configuration's settings.

    `base` is the arm's AnswerSettings.resolve(...) (as compare runs it); a configuration replaces its prompt
    style, context sentences and answer length, and chooses the chunk size, retrieval mode and k for arms that
    retrieve. `chunks` gives the index of each chunk size (ragtune.workflows.chunk_indexes); without it only the
    index's own size can be answered. With `adapters` (the search trains the arm's adapter) a configuration's
    epochs and lr choose the adapter, and `load(adapter_path)` its generator (`generator` may then be None);
    `defaults` is the (epochs, lr) trained whatever the budget.
    """

    def __init__(self, arm: str, examples: list[Example], generator: Any, index: Any, base: AnswerSettings, *,
                 k: int, mode: str, retrieve_options: Mapping[str, Any] | None = None, batch_size: int = 8,
                 chunks: ChunkIndexes | None = None,
                 adapters: TrainedAdapters | None = None, load: Callable[[str], Any] | None = None,
                 defaults: tuple[int, float] | None = None):
        if not examples:
            raise InputError(f"arm {arm!r}: no questions to search on")
        self.arm, self.examples, self.generator, self.index = arm, examples, generator, index
        self.base, self.k, self.mode, self.batch_size = base, k, mode, batch_size
        self.retrieve_options = dict(retrieve_options or {})  # the +rerank settings of every mode it tries
        self.chunks = chunks
        self.adapters, self.load, self.defaults = adapters, load, defaults
        self._retrievers: dict[tuple[int, str], Any] = {}
        self._loaded: str | None = None  # the adapter whose generator self.generator is
        self._training: dict[str, dict[str, Any]] = {}  # by params_key: the training record of the last call

    def __call__(self, params: Mapping[str, Choice], report: Report | None = None) -> TrialMetrics:
        rows: list[dict[str, Any]] = []

        def batch_done(batch: list[dict[str, Any]]) -> None:
            rows.extend(batch)
            if report is not None and len(rows) < len(self.examples):
                report(_metrics(rows))

        self.rows(params, on_rows=batch_done)
        return _metrics(rows)

    def rows(self, params: Mapping[str, Choice],
             on_rows: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
        """The prediction rows of one configuration (the predictions.jsonl row shape)."""
        retrieves = ARMS[self.arm].retrieval
        generator = self.generator_for(params)
        index, examples = self.index_for(params) if retrieves else (self.index, self.examples)
        settings = replace(with_params(self.base, params), embedder=index.embedder if retrieves else None)
        retriever = self._retriever(index, str(params.get("mode", self.mode))) if retrieves else None
        return run_arm(self.arm, examples, generator, retriever, settings,
                       k=int(params.get("k", self.k)), batch_size=self.batch_size, on_rows=on_rows)

    def generator_for(self, params: Mapping[str, Choice]) -> Any:
        """The generator of a configuration: with training settings, over the adapter trained with them (trained
        now when no trial trained it before; TrialSkipped when that would exceed the training budget)."""
        pair = training_params(params)
        if pair is None or self.adapters is None or self.load is None:
            return self.generator
        record: dict[str, Any] = {"epochs": pair[0], "lr": pair[1]}
        self._training[params_key(params)] = record
        try:
            adapter = self.adapters.get(*pair, exempt=pair == self.defaults)
        except OverBudget as exc:
            record["over_budget"] = str(exc)
            raise TrialSkipped(str(exc)) from None
        # relative to the search folder (as chunk indexes are): still true once compare renames its run into place
        record.update(adapter=os.path.relpath(adapter.path, self.adapters.root.parent), train_s=round(adapter.train_s if adapter.trained_now else 0.0, 3),
                      adapter_train_s=round(adapter.train_s, 3), reused=not adapter.trained_now)
        if adapter.path != self._loaded:
            self.generator = None  # one adapter's model in memory at a time
            gc.collect()
            self.generator, self._loaded = self.load(adapter.path), adapter.path
        return self.generator

    def describe_training(self, params: Mapping[str, Choice]) -> dict[str, Any] | None:
        """The training record of a configuration's last run (its adapter, the seconds this trial trained and the
        adapter's own training seconds), for trials.jsonl; None when its training is not searched."""
        return self._training.get(params_key(params))

    def index_for(self, params: Mapping[str, Choice]) -> tuple[Any, list[Example]]:
        """(index, questions) of a configuration: its chunk size's index, the questions judged by gold document
        on a re-chunked one. TrialSkipped when that index cannot be had."""
        own = self.index.config.chunk.chunk_tokens
        size = int(params.get("chunk_tokens", own))
        if size == own:
            return self.index, self.examples
        if self.chunks is None:
            raise TrialSkipped(f"chunk size {size}: no folder to re-chunk the index into")
        from ragtune.index.rechunk import CannotRechunk

        try:
            return self.chunks.get(size), doc_level_gold(self.examples)
        except CannotRechunk as exc:
            raise TrialSkipped(f"chunk size {size}: {exc}") from None

    def describe_index(self, params: Mapping[str, Choice]) -> dict[str, Any] | None:
        """The index a configuration answers from, for best.json (None for an arm that does not retrieve)."""
        if not ARMS[self.arm].retrieval or self.chunks is None:
            return None
        return self.chunks.describe(int(params.get("chunk_tokens", self.index.config.chunk.chunk_tokens)),
                                    relative_to=self.chunks.root.parent.parent)

    def _retriever(self, index: Any, mode: str) -> Any:
        key = (id(index), mode)
        if key not in self._retrievers:
            from ragtune.retrieve import open_retriever

            self._retrievers[key] = open_retriever(index, mode, **self.retrieve_options)
        return self._retrievers[key]


@dataclass(frozen=True)
class TrialSpec:
    """What the AnswerTrials of an arm whose training is not searched is built from, in this process or another
    (a Ray worker builds its own: ragtune.distributed.ray_trials)."""

    arm: str
    examples: list[Example]
    generate: GenerateConfig  # the arm's generator (model, adapter, decoding)
    index_path: str  # the index it retrieves from
    chunks_root: str  # the folder of that index's re-chunked copies (ChunkIndexes.root)
    k: int
    mode: str
    batch_size: int
    retrieve_options: dict[str, Any] = field(default_factory=dict)  # CompareConfig.retrieve_options()

    def runner(self, chunks: ChunkIndexes | None = None, *, load_model: bool = True) -> AnswerTrials:
        """The runner (`chunks`: the driver's own ChunkIndexes, else opened from the folders); without
        `load_model`, one that only finds indexes (`index_for`, `describe_index`) and cannot answer."""
        from ragtune.generate import load_generator

        if chunks is None:
            from ragtune.index import Index

            chunks = ChunkIndexes(Index.open(self.index_path), Path(self.chunks_root))
        generator = load_generator(self.generate) if load_model else None
        return AnswerTrials(self.arm, self.examples, generator, chunks.index, AnswerSettings.resolve(self.generate),
                            k=self.k, mode=self.mode, retrieve_options=self.retrieve_options,
                            batch_size=self.batch_size, chunks=chunks)


def _metrics(rows: list[dict[str, Any]]) -> TrialMetrics:
    """The figures of the questions answered so far (all of them, or a pruned trial's first batches)."""
    golds = [r["gold_answers"] for r in rows]
    answers = [r["answer"] for r in rows]
    f1s, ems = f1_batch(answers, golds), exact_match_batch(answers, golds)
    latency = latency_summary([r["retrieve_ms"] for r in rows], [r["generate_ms"] for r in rows])
    return TrialMetrics(f1=sum(f1s) / len(f1s), exact_match=sum(ems) / len(ems),
                        latency_ms_p50=latency["latency_ms_p50"], latency_ms_p95=latency["latency_ms_p95"],
                        n=len(rows), latency_ms_mean=latency["latency_ms_mean"], f1_scores=tuple(f1s))
