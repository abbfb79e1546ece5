"""The first-run experience: `ragtune demo` on an empty cache, then again cached, timed with peak memory.

    .venv/bin/python bench/bench_demo.py [--keep DIR]

Each run is its own process (`ragtune -q demo --out RUN`) with RAGTUNE_CACHE_DIR pointing at a fresh folder, so
the first run converts the bundled model, exports the encoder, builds the index and trains both adapters, as on a
new machine; the second reuses all of it. Prints wall seconds and the peak RSS of the whole process tree (the
conversion's child process included), sampled every 0.2 s with psutil: the demo's compare resets the kernel's
per-process high-water mark for each arm (to report each arm's own peak), so `/usr/bin/time` would under-report.
Issue #15's goals: first run <= 8 min, cached <= 90 s, peak <= 3 GB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE_S = 0.2


def run_sampled(argv: list[str], env: dict[str, str]) -> tuple[int, float, float]:
    """(exit status, wall seconds, peak RSS of the process tree in GB)."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]))
        except psutil.Error:
            pass
        time.sleep(SAMPLE_S)
    return proc.returncode, time.perf_counter() - t0, peak / 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", default=None, help="use (and keep) this cache folder instead of a temporary one")
    args = parser.parse_args()
    cache = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ragtune-demo-cache-"))
    runs = Path(tempfile.mkdtemp(prefix="ragtune-demo-runs-"))
    env = {**os.environ, "RAGTUNE_CACHE_DIR": str(cache)}
    ragtune = str(Path(sys.executable).with_name("ragtune"))
    rows = []
    try:
        for label in ("first run (empty cache)", "cached run"):
            code, wall, peak = run_sampled([ragtune, "-q", "demo", "--out", str(runs / label.split()[0])], env)
            rows.append((label, code, wall, peak))
            print(f"{label:26s} exit {code}  {wall:7.1f} s ({wall / 60:.1f} min)  peak RSS {peak:.2f} GB", flush=True)
            if code != 0:
                return code
    finally:
        shutil.rmtree(runs, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(cache, ignore_errors=True)
    (_, _, first, first_peak), (_, _, cached, cached_peak) = rows
    peak = max(first_peak, cached_peak)
    print(f"goals (issue #15): first run <= 480 s: {first:.0f} s ({'met' if first <= 480 else 'not met'}); "
          f"cached <= 90 s: {cached:.0f} s ({'met' if cached <= 90 else 'not met'}); "
          f"peak <= 3 GB: {peak:.2f} GB ({'met' if peak <= 3 else 'not met'})")
    return 0


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    sys.exit(main())
