"""What a search trial is, shared by the search (ragtune.workflows.search) and its trial loop
(ragtune.workflows.trial_loop): a trial's metrics, the limits that judge it, its record, and a configuration's key.
Both import from here, so neither imports the other's module for them."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ragtune.evaluate.cost import CostModel
from ragtune.workflows.search_space import Choice


@dataclass(frozen=True)
class TrialMetrics:
    """What one configuration scored on the questions it answered (scores in [0, 1], latency in ms)."""

    f1: float
    exact_match: float
    latency_ms_p50: float
    latency_ms_p95: float
    n: int
    latency_ms_mean: float = math.nan  # NaN in trials recorded before it was (the cost is then unknown)
    f1_scores: tuple[float, ...] = ()  # per validation question, in question order (empty: not recorded)

    def to_dict(self) -> dict[str, Any]:
        return {"f1": self.f1, "exact_match": self.exact_match, "latency_ms_p50": _number(self.latency_ms_p50),
                "latency_ms_p95": _number(self.latency_ms_p95), "latency_ms_mean": _number(self.latency_ms_mean),
                "n": self.n, "f1_per_question": [round(x, 6) for x in self.f1_scores]}

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> TrialMetrics:
        def latency(name: str) -> float:
            value = row.get(name)
            return math.nan if value is None else float(value)

        return cls(f1=row["f1"], exact_match=row["exact_match"], latency_ms_p50=latency("latency_ms_p50"),
                   latency_ms_p95=latency("latency_ms_p95"), n=row["n"], latency_ms_mean=latency("latency_ms_mean"),
                   f1_scores=tuple(float(x) for x in row.get("f1_per_question") or ()))


NOT_RUN = TrialMetrics(f1=0.0, exact_match=0.0, latency_ms_p50=math.nan, latency_ms_p95=math.nan, n=0)


def _number(value: float) -> float | None:
    """A figure as JSON holds it: None for NaN (not measured)."""
    return None if math.isnan(value) else value


class TrialSkipped(Exception):
    """A runner cannot answer with a configuration (e.g. a chunk size whose index cannot be built): the reason."""


TrialRunner = Callable[..., TrialMetrics]  # runner(params) or, when pruning, runner(params, report)
Report = Callable[[TrialMetrics], None]  # the running figures after each batch; raises to stop a pruned trial


@dataclass(frozen=True)
class Limits:
    """The constraints a chosen configuration meets on validation, and the cost model that prices a trial."""

    max_p95_ms: float | None = None
    max_cost_per_1k: float | None = None
    cost_model: CostModel = CostModel()

    def cost_per_1k(self, metrics: TrialMetrics) -> float | None:
        """USD per 1,000 queries served at the trial's mean latency (None when it was not measured)."""
        cost = self.cost_model.cost_per_1k_queries(metrics.latency_ms_mean)
        return None if math.isnan(cost) else cost

    def excess(self, metrics: TrialMetrics) -> dict[str, float]:
        """How far over each limit the trial is, by optuna constraint name (<= 0: within it). A trial whose
        cost cannot be priced is over a cost limit: it cannot be shown to meet it."""
        over = {}
        if self.max_p95_ms is not None:
            over["p95_over_ms"] = metrics.latency_ms_p95 - self.max_p95_ms
        if self.max_cost_per_1k is not None:
            cost = self.cost_per_1k(metrics)
            over["cost_over_usd"] = 1.0 if cost is None else cost - self.max_cost_per_1k
        return over

    def judge(self, metrics: TrialMetrics) -> tuple[float | None, bool]:
        """(cost per 1k queries, feasible) of a trial's metrics."""
        return self.cost_per_1k(metrics), all(v <= 0 for v in self.excess(metrics).values())

    def describe(self) -> str:
        """The limits as the flags that set them: '--max-p95-ms 250 and --max-cost-per-1k 0.002'."""
        parts = [f"--max-p95-ms {self.max_p95_ms:g}" if self.max_p95_ms is not None else "",
                 f"--max-cost-per-1k {self.max_cost_per_1k:g}" if self.max_cost_per_1k is not None else ""]
        return " and ".join(p for p in parts if p)


@dataclass(frozen=True)
class Trial:
    """One evaluated configuration: a trials.jsonl row."""

    number: int
    params: dict[str, Choice]
    metrics: TrialMetrics
    seconds: float
    feasible: bool
    cost_per_1k: float | None = None
    skipped: str | None = None  # why the configuration could not be run (then never feasible)
    pruned: bool = False  # stopped by the pruner: `metrics` are the questions answered by then (never feasible)
    intermediate: tuple[tuple[int, float], ...] = ()  # (questions answered, running F1) told to the pruner
    training: dict[str, Any] | None = None  # its adapter and training seconds, when training is searched
    failed: str | None = None  # why it could not be run (a Ray worker kept failing): never feasible, run on resume

    @property
    def retry(self) -> bool:
        """A resumed search runs this configuration again (it was skipped or failed: it has no figures)."""
        return bool(self.skipped or self.failed)

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"trial": self.number, "params": self.params,
                               "validation": {**self.metrics.to_dict(), "cost_per_1k": self.cost_per_1k},
                               "seconds": round(self.seconds, 3), "feasible": self.feasible}
        if self.skipped:
            row["skipped"] = self.skipped
        if self.failed:
            row["failed"] = self.failed
        if self.pruned:
            row["pruned"] = True
        if self.intermediate:
            row["intermediate"] = [[n, round(f1, 6)] for n, f1 in self.intermediate]
        if self.training is not None:
            row["training"] = self.training
        return row

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Trial:
        validation = row["validation"]
        cost = validation.get("cost_per_1k")
        return cls(number=int(row["trial"]), params=dict(row["params"]), metrics=TrialMetrics.from_dict(validation),
                   seconds=float(row["seconds"]), feasible=bool(row["feasible"]),
                   cost_per_1k=None if cost is None else float(cost), skipped=row.get("skipped") or None,
                   pruned=bool(row.get("pruned")), training=row.get("training"), failed=row.get("failed") or None,
                   intermediate=tuple((int(n), float(f1)) for n, f1 in row.get("intermediate") or ()))

    def judged(self, limits: Limits) -> Trial:
        """This trial priced and judged by `limits` (a resumed search's own, whatever they were before)."""
        if self.retry:
            return replace(self, cost_per_1k=None, feasible=False)
        cost, feasible = limits.judge(self.metrics)
        return replace(self, cost_per_1k=cost, feasible=feasible and not self.pruned)



def params_key(params: Mapping[str, Choice]) -> str:
    """The identity of a configuration (order-free), for resume and de-duplication."""
    return json.dumps(dict(params), sort_keys=True)
