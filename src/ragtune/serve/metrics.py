"""The server's Prometheus metrics, kept by `prometheus_client` in a registry of their own.

Each `Metrics` owns a `CollectorRegistry` (not the process-wide default), so several apps in one process (tests,
a bench) count separately and never collide on a metric name.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)


class Metrics:
    """The server's metrics. Declare with `counter`/`histogram`/`gauge`, record with `inc`/`observe`.

    Gauges are read from callbacks at scrape time. Label names are declared with the metric; recording with other
    labels raises ValueError.

    >>> m = Metrics()
    >>> m.counter("demo_total", "Demo events.", labels=("kind",))
    >>> m.inc("demo_total", kind="a")
    >>> m.value("demo_total", kind="a")
    1.0
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, Counter | Histogram | Gauge] = {}

    def counter(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        self._metrics[name] = Counter(name, help_text, labelnames=labels, registry=self.registry)

    def histogram(
        self, name: str, help_text: str, buckets: tuple[float, ...] = LATENCY_BUCKETS, labels: tuple[str, ...] = ()
    ) -> None:
        self._metrics[name] = Histogram(name, help_text, labelnames=labels, buckets=buckets, registry=self.registry)

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        gauge = Gauge(name, help_text, registry=self.registry)
        gauge.set_function(lambda: float(read()))
        self._metrics[name] = gauge

    def _series(self, name: str, labels: dict[str, str]):
        metric = self._metrics[name]
        return metric.labels(**{k: str(v) for k, v in labels.items()}) if labels else metric

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._series(name, labels).inc(amount)

    def observe(self, name: str, value: float, **labels: str) -> None:
        self._series(name, labels).observe(value)

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value, 0 before the first `inc` (tests, the bench)."""
        if name not in self._metrics:
            raise KeyError(name)
        sample = name if name.endswith("_total") else f"{name}_total"
        return self.registry.get_sample_value(sample, {k: str(v) for k, v in labels.items()}) or 0.0

    def render(self) -> str:
        """The exposition text (Prometheus text format 0.0.4)."""
        return generate_latest(self.registry).decode("utf-8")


def server_metrics(queue_depth: Callable[[], float]) -> Metrics:
    """The metric families `ragtune serve` exposes."""
    metrics = Metrics()
    metrics.counter(
        "ragtune_requests_total", "HTTP requests by route, method and status code.", ("method", "route", "status")
    )
    metrics.histogram("ragtune_request_duration_seconds", "HTTP request latency by route.", labels=("route",))
    metrics.gauge("ragtune_queue_depth", "Generation jobs waiting in the queue.", queue_depth)
    metrics.histogram("ragtune_generation_batch_size", "Jobs answered per generate call (dynamic batching).", BATCH_BUCKETS)
    metrics.counter(
        "ragtune_rate_limited_total", "Requests refused with 429 (rate limit or full queue) by reason.", ("reason",)
    )
    metrics.counter(
        "ragtune_screened_chunks_total", "Retrieved chunks flagged by injection screening, by action.", ("action",)
    )
    metrics.counter("ragtune_acl_dropped_hits_total", "Hits removed by the post-retrieval access check (should stay 0).")
    metrics.counter("ragtune_document_writes_total", "Document changes committed, by operation.", ("op",))
    return metrics
