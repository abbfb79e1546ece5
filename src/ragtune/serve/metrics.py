"""Prometheus text-format metrics without a client library: counters, gauges and histograms with labels."""

from __future__ import annotations

import threading
from collections.abc import Callable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)

Labels = tuple[tuple[str, str], ...]


def _labels_text(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    escaped = (f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34)).replace(chr(10), " ")}"' for k, v in items)
    return "{" + ",".join(escaped) + "}"


class Metrics:
    """The server's metrics. Record with `inc`, `observe`; gauges are read from callbacks at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._help: dict[str, tuple[str, str]] = {}  # name -> (type, help)
        self._counters: dict[str, dict[Labels, float]] = {}
        self._hist: dict[str, tuple[tuple[float, ...], dict[Labels, list[float]]]] = {}
        self._gauges: dict[str, Callable[[], float]] = {}

    def counter(self, name: str, help_text: str) -> None:
        self._help[name] = ("counter", help_text)
        self._counters.setdefault(name, {})

    def histogram(self, name: str, help_text: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self._help[name] = ("histogram", help_text)
        self._hist.setdefault(name, (buckets, {}))

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self._help[name] = ("gauge", help_text)
        self._gauges[name] = read

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._counters[name]
            series[key] = series.get(key, 0.0) + amount

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        buckets, series = self._hist[name]
        with self._lock:
            row = series.setdefault(key, [0.0] * (len(buckets) + 2))  # per-bucket counts, +Inf, then sum
            for i, bound in enumerate(buckets):
                if value <= bound:
                    row[i] += 1
            row[len(buckets)] += 1
            row[len(buckets) + 1] += value

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value (tests, the bench)."""
        with self._lock:
            return self._counters[name].get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        """The exposition text (Prometheus text format 0.0.4)."""
        lines: list[str] = []
        with self._lock:
            for name, (kind, help_text) in sorted(self._help.items()):
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} {kind}")
                if kind == "counter":
                    for labels, value in sorted(self._counters[name].items()):
                        lines.append(f"{name}{_labels_text(labels)} {value:g}")
                elif kind == "gauge":
                    lines.append(f"{name} {float(self._gauges[name]()):g}")
                else:
                    buckets, series = self._hist[name]
                    for labels, row in sorted(series.items()):
                        for i, bound in enumerate(buckets):
                            lines.append(f"{name}_bucket{_labels_text(labels, (('le', f'{bound:g}'),))} {row[i]:g}")
                        lines.append(f"{name}_bucket{_labels_text(labels, (('le', '+Inf'),))} {row[len(buckets)]:g}")
                        lines.append(f"{name}_sum{_labels_text(labels)} {row[len(buckets) + 1]:.6f}")
                        lines.append(f"{name}_count{_labels_text(labels)} {row[len(buckets)]:g}")
        return "\n".join(lines) + "\n"


def server_metrics(queue_depth: Callable[[], float]) -> Metrics:
    """The metric families `ragtune serve` exposes."""
    metrics = Metrics()
    metrics.counter("ragtune_requests_total", "HTTP requests by route, method and status code.")
    metrics.histogram("ragtune_request_duration_seconds", "HTTP request latency by route.")
    metrics.gauge("ragtune_queue_depth", "Generation jobs waiting in the queue.", queue_depth)
    metrics.histogram("ragtune_generation_batch_size", "Jobs answered per generate call (dynamic batching).", BATCH_BUCKETS)
    metrics.counter("ragtune_rate_limited_total", "Requests refused with 429 (rate limit or full queue) by reason.")
    metrics.counter("ragtune_screened_chunks_total", "Retrieved chunks flagged by injection screening, by action.")
    metrics.counter("ragtune_acl_dropped_hits_total", "Hits removed by the post-retrieval access check (should stay 0).")
    metrics.counter("ragtune_document_writes_total", "Document changes committed, by operation.")
    return metrics
