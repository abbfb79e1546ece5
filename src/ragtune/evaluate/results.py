"""The scored results of a compare run as typed records: `RunResults` and its parts, and results.json.

`RunResults.to_dict()` is exactly the results.json structure (keys in this order):

    {"format_version", "primary_metric", "alpha", "seed", "n_resamples",
     "arms": {arm: {"n", "uses_retrieval", "metrics": {...}, "ci95": {metric: [lo, hi]}}},
     "comparisons": [{"a", "b", "metric", "delta", "ci95", "p_value", "n", "method", "p_value_holm", "significant"}],
     "freshness": {"n", "arms": {arm: {"n", "metrics", "ci95"}}, "comparisons": [...]} | None,
     "setup", "scenario", "cost_model", "per_question": {arm: {qid: {metric: value}}}, "warnings", "methods",
     "recommendation": {"arm", "reasons", "excluded"}}   (the last one once report has recommended an arm)

`RunResults.from_dict` reads any results.json this package wrote (and hand-built partial ones): missing keys
take defaults, optional comparison fields stay absent, and unknown top-level keys are kept and written back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ValidationError

from ragtune.errors import InputError
from ragtune.evaluate.cost import CostModel, Scenario
from ragtune.evaluate.run_files import dumps_results, json_safe
from ragtune.evaluate.stats import DEFAULT_RESAMPLES

FORMAT_VERSION = 1
_KNOWN_KEYS = ("format_version", "primary_metric", "alpha", "seed", "n_resamples", "arms", "comparisons",
               "freshness", "setup", "scenario", "cost_model", "per_question", "warnings", "methods", "recommendation")


def _ci(value: Any) -> tuple[float, float] | None:
    return None if value is None else (value[0], value[1])


@dataclass(frozen=True)
class ArmMetrics:
    """One arm's aggregate metrics (None where undefined) and their 95% CIs. `uses_retrieval` is None in the
    freshness section, which does not record it."""

    n: int
    metrics: dict[str, float | None]
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)
    uses_retrieval: bool | None = None

    def metric(self, name: str) -> float | None:
        return self.metrics.get(name)

    def to_dict(self) -> dict[str, Any]:
        head: dict[str, Any] = {"n": self.n}
        if self.uses_retrieval is not None:
            head["uses_retrieval"] = self.uses_retrieval
        return {**head, "metrics": dict(self.metrics), "ci95": {m: list(ci) for m, ci in self.ci95.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArmMetrics:
        return cls(n=int(data.get("n") or 0), metrics=dict(data.get("metrics") or {}),
                   ci95={m: _ci(ci) for m, ci in (data.get("ci95") or {}).items() if ci is not None},
                   uses_retrieval=None if data.get("uses_retrieval") is None else bool(data["uses_retrieval"]))


@dataclass(frozen=True)
class Comparison:
    """A paired test of arm `a` against arm `b` on one metric (delta = a − b). The fields after `p_value` are
    absent (None) in hand-built results; `significant` then falls back to the raw p-value against alpha."""

    a: str
    b: str
    metric: str
    delta: float
    p_value: float
    ci95: tuple[float, float] | None = None
    n: int | None = None
    method: str | None = None
    p_value_holm: float | None = None
    significant: bool | None = None

    @property
    def adjusted_p(self) -> float:
        """The Holm-adjusted p-value when recorded, else the raw one."""
        return self.p_value if self.p_value_holm is None else self.p_value_holm

    def is_significant(self, alpha: float) -> bool:
        return self.significant if self.significant is not None else self.p_value < alpha

    def flipped(self) -> Comparison:
        """The same test oriented b − a."""
        ci = None if self.ci95 is None else (-self.ci95[1], -self.ci95[0])
        return replace(self, a=self.b, b=self.a, delta=-self.delta, ci95=ci)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"a": self.a, "b": self.b, "metric": self.metric, "delta": self.delta}
        if self.ci95 is not None:
            out["ci95"] = list(self.ci95)
        out["p_value"] = self.p_value
        for name in ("n", "method", "p_value_holm", "significant"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        return cls(a=str(data["a"]), b=str(data["b"]), metric=str(data["metric"]), delta=data["delta"],
                   p_value=data["p_value"], ci95=_ci(data.get("ci95")), n=data.get("n"), method=data.get("method"),
                   p_value_holm=data.get("p_value_holm"), significant=data.get("significant"))


@dataclass(frozen=True)
class Freshness:
    """Scores on the questions about facts changed after training (answered over the updated index)."""

    n: int
    arms: dict[str, ArmMetrics]
    comparisons: tuple[Comparison, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "arms": {a: m.to_dict() for a, m in self.arms.items()},
                "comparisons": [c.to_dict() for c in self.comparisons]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Freshness:
        return cls(n=int(data.get("n") or 0),
                   arms={a: ArmMetrics.from_dict(m) for a, m in (data.get("arms") or {}).items()},
                   comparisons=tuple(Comparison.from_dict(c) for c in data.get("comparisons") or ()))


@dataclass(frozen=True)
class Recommendation:
    """The arm to deploy, why, and why each other arm was ruled out (computed by ragtune.report.recommend)."""

    arm: str | None
    reasons: tuple[str, ...]
    excluded: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"arm": self.arm, "reasons": list(self.reasons), "excluded": dict(self.excluded)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recommendation:
        return cls(arm=data.get("arm"), reasons=tuple(data.get("reasons") or ()),
                   excluded=dict(data.get("excluded") or {}))


def _model(kind: type[BaseModel], data: Any) -> Any:
    """A pydantic settings model from a stored dict, tolerant of fields another version wrote."""
    known = {k: v for k, v in (data or {}).items() if k in kind.model_fields}
    try:
        valid = kind(**known)
    except ValidationError:
        return kind()
    # Keep the stored value where validation only changed its type (1000 → 1000.0), so the file round-trips.
    return kind.model_construct(**{k: v if v == getattr(valid, k) else getattr(valid, k) for k, v in known.items()})


@dataclass(frozen=True)
class RunResults:
    """Everything a compare run measured: per-arm metrics with CIs, paired tests, freshness, setup, cost."""

    arms: dict[str, ArmMetrics]
    comparisons: tuple[Comparison, ...] = ()
    freshness: Freshness | None = None
    setup: dict[str, Any] = field(default_factory=dict)
    scenario: Scenario = field(default_factory=Scenario)
    cost_model: CostModel = field(default_factory=CostModel)
    per_question: dict[str, dict[str, dict[str, float | None]]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    methods: dict[str, str] = field(default_factory=dict)
    primary_metric: str = "f1"
    alpha: float = 0.05
    seed: int = 0
    n_resamples: int = DEFAULT_RESAMPLES
    format_version: int = FORMAT_VERSION
    recommendation: Recommendation | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # top-level keys this version does not know, kept as-is

    def comparison(self, a: str, b: str, metric: str, section: str = "comparisons") -> Comparison | None:
        """The paired comparison of arms a and b on metric, oriented as a − b (None if not computed);
        `section="freshness"` looks among the freshness tests."""
        source = self.comparisons if section == "comparisons" else (self.freshness.comparisons if self.freshness else ())
        for entry in source:
            if entry.metric != metric:
                continue
            if entry.a == a and entry.b == b:
                return entry
            if entry.a == b and entry.b == a:
                return entry.flipped()
        return None

    def with_recommendation(self, recommendation: Recommendation) -> RunResults:
        return replace(self, recommendation=recommendation)

    def to_dict(self) -> dict[str, Any]:
        """The results.json structure (strict JSON values: NaN/inf as None)."""
        out: dict[str, Any] = {
            "format_version": self.format_version,
            "primary_metric": self.primary_metric,
            "alpha": self.alpha,
            "seed": self.seed,
            "n_resamples": self.n_resamples,
            "arms": {a: m.to_dict() for a, m in self.arms.items()},
            "comparisons": [c.to_dict() for c in self.comparisons],
            "freshness": self.freshness.to_dict() if self.freshness is not None else None,
            "setup": self.setup,
            "scenario": self.scenario.model_dump(),
            "cost_model": self.cost_model.model_dump(),
            "per_question": self.per_question,
            "warnings": list(self.warnings),
            "methods": self.methods,
        }
        if self.recommendation is not None:
            out["recommendation"] = self.recommendation.to_dict()
        out.update(self.extra)
        return json_safe(out)

    def to_json(self) -> str:
        """results.json's text."""
        return dumps_results(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResults:
        """Typed results from a results.json dict (this version's or an older one's); InputError if it is not
        one at all."""
        if not isinstance(data, Mapping) or not isinstance(data.get("arms", {}), Mapping):
            raise InputError("not a results.json structure: expected an object with an 'arms' mapping")
        try:
            fresh = data.get("freshness")
            rec = data.get("recommendation")
            return cls(
                arms={a: ArmMetrics.from_dict(m) for a, m in (data.get("arms") or {}).items()},
                comparisons=tuple(Comparison.from_dict(c) for c in data.get("comparisons") or ()),
                freshness=Freshness.from_dict(fresh) if fresh else None,
                setup=dict(data.get("setup") or {}),
                scenario=_model(Scenario, data.get("scenario")),
                cost_model=_model(CostModel, data.get("cost_model")),
                per_question={a: dict(q) for a, q in (data.get("per_question") or {}).items()},
                warnings=tuple(data.get("warnings") or ()),
                methods=dict(data.get("methods") or {}),
                primary_metric=data.get("primary_metric", "f1"),
                alpha=data.get("alpha", 0.05),
                seed=data.get("seed", 0),
                n_resamples=data.get("n_resamples", DEFAULT_RESAMPLES),
                format_version=data.get("format_version", FORMAT_VERSION),
                recommendation=Recommendation.from_dict(rec) if rec else None,
                extra={k: v for k, v in data.items() if k not in _KNOWN_KEYS},
            )
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise InputError(f"malformed results.json structure: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> RunResults:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InputError(f"results.json is not valid JSON ({exc.msg})") from exc
