"""A cost model: $/CPU-hour or $/GPU-hour turned into cost per 1k queries, one-off costs and payback; and the
deployment Scenario those costs are priced for (traffic, how often knowledge changes, budgets).

Serving cost is machine time: a query that keeps the machine busy for its mean end-to-end latency costs
latency × hourly rate / concurrency. Training and indexing are one-off costs (training recurs each time the
knowledge changes, see RETRAINS_PER_MONTH). Fine-tuning "pays back" when what it saves per query over a
cheaper-to-build arm covers its training cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from ragtune.config import StrictModel

Device = Literal["cpu", "gpu"]
KnowledgeChange = Literal["static", "monthly", "weekly", "daily"]

# How often a closed-book tuned model must be retrained to stay current, per 30-day month.
RETRAINS_PER_MONTH: dict[str, float] = {"static": 0.0, "monthly": 1.0, "weekly": 30 / 7, "daily": 30.0}


class Scenario(StrictModel):
    """What the deployment needs; the `--scenario` flags of `ragtune compare`."""

    knowledge_change: KnowledgeChange = Field("monthly", description="how often the documents' facts change")
    latency_budget_ms: float | None = Field(None, gt=0, description="p95 end-to-end latency allowed per query")
    queries_per_day: float = Field(1000, ge=0, description="expected traffic")
    training_budget_usd: float | None = Field(
        None, ge=0, description="what may be spent on (re)training per month; None = no limit"
    )
    needs_citations: bool = Field(False, description="answers must cite their sources")


class CostModel(StrictModel):
    """Hourly prices of the machines that serve and train. Defaults: a 2-vCPU cloud VM, one mid-range GPU."""

    cpu_hour_usd: float = Field(0.10, ge=0, description="price of the serving/training CPU machine per hour")
    gpu_hour_usd: float = Field(2.50, ge=0, description="price of a GPU machine per hour")
    serve_on: Device = "cpu"
    train_on: Device = "cpu"
    concurrency: int = Field(1, ge=1, description="queries one machine serves at the same time")

    def hourly(self, device: Device) -> float:
        """Price per hour of the given device."""
        return self.gpu_hour_usd if device == "gpu" else self.cpu_hour_usd

    def cost_per_1k_queries(self, mean_latency_ms: float) -> float:
        """Serving cost of 1,000 queries that each take `mean_latency_ms` of machine time."""
        if math.isnan(mean_latency_ms):
            return float("nan")
        hours = 1000 * mean_latency_ms / 1000 / 3600
        return hours * self.hourly(self.serve_on) / self.concurrency

    def training_cost(self, seconds: float) -> float:
        """One-off cost of a training run that took `seconds`."""
        return seconds / 3600 * self.hourly(self.train_on)

    def indexing_cost(self, seconds: float) -> float:
        """One-off cost of building the index (on the serving device's kind of machine)."""
        return seconds / 3600 * self.hourly(self.serve_on)


@dataclass(frozen=True)
class Payback:
    """When a one-off investment is recovered by a per-query saving (None: never)."""

    queries: float | None
    days: float | None


def payback(one_off_usd: float, saving_per_1k_usd: float, queries_per_day: float) -> Payback:
    """Queries and days until `one_off_usd` is recovered by saving `saving_per_1k_usd` per 1k queries.

    >>> payback(1.0, 0.5, 1000)
    Payback(queries=2000.0, days=2.0)
    """
    if one_off_usd <= 0:
        return Payback(queries=0.0, days=0.0)
    if saving_per_1k_usd <= 0 or math.isnan(saving_per_1k_usd):
        return Payback(queries=None, days=None)
    queries = one_off_usd / saving_per_1k_usd * 1000
    days = queries / queries_per_day if queries_per_day > 0 else None
    return Payback(queries=queries, days=days)


def monthly_training_cost(training_usd: float, knowledge_change: KnowledgeChange) -> float:
    """What keeping a tuned model current costs per month: one training run per knowledge change."""
    return training_usd * RETRAINS_PER_MONTH[knowledge_change]
