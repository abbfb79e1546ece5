"""Efficiency figures: latency percentiles (retrieval vs generation), tokens/s, memory, artifact size."""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ragtune.errors import InputError


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100, linear interpolation) of values; NaN for an empty sequence."""
    if not 0 <= q <= 100:
        raise InputError(f"percentile q must be in [0, 100], got {q}")
    if len(values) == 0:
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def latency_summary(retrieve_ms: Sequence[float], generate_ms: Sequence[float]) -> dict[str, float]:
    """p50/p95/mean of end-to-end latency (retrieve + generate) and p50/p95 of each part, in ms."""
    if len(retrieve_ms) != len(generate_ms):
        raise InputError(f"{len(retrieve_ms)} retrieval timings but {len(generate_ms)} generation timings")
    r = np.asarray(retrieve_ms, dtype=np.float64)
    g = np.asarray(generate_ms, dtype=np.float64)
    total = r + g
    return {
        "latency_ms_p50": percentile(total, 50),
        "latency_ms_p95": percentile(total, 95),
        "latency_ms_mean": float(total.mean()) if total.size else float("nan"),
        "retrieve_ms_p50": percentile(r, 50),
        "retrieve_ms_p95": percentile(r, 95),
        "generate_ms_p50": percentile(g, 50),
        "generate_ms_p95": percentile(g, 95),
    }


def tokens_per_s(completion_tokens: Sequence[int], generate_ms: Sequence[float]) -> float:
    """Generated tokens per second of generation time, over all questions (NaN when no time was spent)."""
    seconds = float(np.sum(np.asarray(generate_ms, dtype=np.float64))) / 1000.0
    if seconds <= 0:
        return float("nan")
    return float(np.sum(np.asarray(completion_tokens, dtype=np.float64))) / seconds


def peak_memory_mb() -> float:
    """Peak resident memory of this process, in MiB: since the last `reset_peak_memory()` where Linux allows it
    (VmHWM), else over the process's life (ru_maxrss: KiB on Linux, bytes on macOS)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def trim_memory() -> None:
    """Collect garbage and hand the freed heap back to the OS (glibc malloc_trim): a model or a training run
    dropped by Python stays in the process's RSS otherwise, and the next stage's peak stacks on top of it."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def reset_peak_memory() -> bool:
    """Restart the peak-memory count at the current resident size (Linux: /proc/self/clear_refs), so that
    an arm's figure is its own and not an earlier training's. False where the OS does not allow it."""
    trim_memory()  # hand freed heap (a training run's) back first, so it stops counting
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def dir_size_bytes(path: str | Path) -> int:
    """Total size of the files under a folder (an index, an adapter), not following symlinks."""
    root = Path(path)
    if not root.exists():
        raise InputError(f"path not found: {str(root)!r}")
    if root.is_file():
        return root.stat().st_size
    total = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            file = Path(dirpath) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total
