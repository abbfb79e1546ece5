"""Load on `ragtune serve` over loopback: a burst of concurrent chat requests, and dynamic batching on vs off.

    python bench/bench_serve.py                 # bundled MiniLM + SmolLM2-135M on the sample handbook
    python bench/bench_serve.py --fake          # hashing embedder + a fake generator with a fixed cost (mechanics)

Phase 1 (burst): N concurrent chat requests against a bounded queue → status counts (0 5xx expected, the
overflow answered 429), p50/p95 latency of the answered ones, throughput.
Phase 2 (batching): M concurrent requests with max_batch=1 (baseline) and max_batch=8, same server settings
otherwise → wall time, throughput and the ratio. Bounded in count and time; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

QUESTIONS = [
    "How many days of annual leave do staff get?",
    "Who approves travel expenses?",
    "When is the cold archive open?",
    "What is the Amberdrift project about?",
    "Where is the Deepwell tank?",
    "How long are research data kept?",
    "Who leads the kelp ecology team?",
    "What must visitors do when they arrive?",
]


class FakeGenerator:
    """Fixed cost per generate call plus per conversation, like a CPU model with batching headroom.

    The server is in the same process as the load client here, so latencies include GIL contention."""

    model_id = "fake-cost"
    batch_size = 8

    def __init__(self, call_s: float = 0.05, per_item_s: float = 0.01):
        self.call_s, self.per_item_s = call_s, per_item_s

    def generate(self, batch, max_new_tokens=64):
        from ragtune.types import Generation

        time.sleep(self.call_s + self.per_item_s * len(batch))
        return [Generation("An answer [1]", 100, 4) for _ in batch]


def build_index(folder: Path, fake: bool):
    from ragtune.index import HashEmbedder, Index
    from ragtune.ingest import load_documents

    handbook = ROOT / "src" / "ragtune" / "sample" / "handbook"
    if fake:
        from ragtune.config import EmbedConfig, IndexConfig

        index = Index.create(folder, IndexConfig(embed=EmbedConfig(model="hash")), embedder=HashEmbedder())
    else:
        index = Index.create(folder)
    index.add_documents(load_documents([handbook]).documents)
    return index


class Server:
    def __init__(self, app):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


async def burst(url: str, n: int, max_tokens: int, time_limit: float) -> tuple[list[tuple[int, float, int]], float]:
    """(status, seconds, Retry-After or 0) per request, and the wall time; -1 is a client-side failure."""
    import httpx

    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(limits=limits, timeout=time_limit) as client:
        async def one(i: int) -> tuple[int, float, int]:
            body = {"model": "rag", "max_tokens": max_tokens,
                    "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]}
            start = time.perf_counter()
            try:
                response = await client.post(f"{url}/v1/chat/completions", json=body)
                retry = int(response.headers.get("Retry-After", "0") or 0)
                return response.status_code, time.perf_counter() - start, retry
            except httpx.HTTPError:
                return -1, time.perf_counter() - start, 0

        start = time.perf_counter()
        results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), time_limit + 60)
        return results, time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class CliServer:
    """`ragtune serve` in its own process (own GIL, as deployed), on a free loopback port."""

    def __init__(self, index_dir: Path, **options):
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.args = [sys.executable, "-c", "from ragtune.cli import main; main()", "--quiet", "serve",
                     "--index", str(index_dir), "--port", str(self.port)]
        for name, value in options.items():
            self.args += [f"--{name.replace('_', '-')}", str(value)]

    def __enter__(self) -> str:
        import os
        import subprocess

        import httpx

        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
        self.proc = subprocess.Popen(self.args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("server did not start in 300s")

    def __exit__(self, *exc) -> None:
        import subprocess

        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:  # still busy generating for a timed-out client
            self.proc.kill()
            self.proc.wait(10)


def run_phase(index, generator, n: int, max_tokens: int, time_limit: float, request_timeout: float, **settings) -> dict:
    import httpx

    if generator is None:  # real models: the CLI server in its own process
        server = CliServer(index.path, rate_limit=1e6, rate_burst=100000, queue_size=settings["queue_size"],
                           max_batch=settings["max_batch"], k=settings["k"], request_timeout=request_timeout,
                           batch_wait_ms=settings["batch_wait_ms"])
    else:
        from ragtune.serve.app import create_app
        from ragtune.serve.auth import KeyStore
        from ragtune.serve.settings import ServeSettings

        app = create_app(ServeSettings(index=str(index.path), arms=("rag",), rate_limit_burst=100000,
                                       request_timeout_s=request_timeout, max_tokens_limit=max(256, max_tokens), **settings),
                         index=index, generators={"rag": generator}, keys=KeyStore({}))
        server = Server(app)
    with server as url:
        # Warm up the model and the retrieval structures; the first answer also measures the service rate
        # that admission control needs (until then the server admits one batch at a time), so it asks for as
        # many tokens as the burst does.
        httpx.post(f"{url}/v1/chat/completions", timeout=300,
                   json={"model": "rag", "max_tokens": max_tokens, "messages": [{"role": "user", "content": QUESTIONS[0]}]})
        before = mean_batch_state(httpx.get(f"{url}/metrics", timeout=30).text)
        results, wall = asyncio.run(burst(url, n, max_tokens, time_limit))
        after = mean_batch_state(httpx.get(f"{url}/metrics", timeout=30).text)
    ok = [t for code, t, _ in results if code == 200]
    codes: dict[int, int] = {}
    for code, _, _ in results:
        codes[code] = codes.get(code, 0) + 1
    retry_after = [r for code, _, r in results if code == 429]
    batches = after[0] - before[0]
    return {"codes": codes, "ok": len(ok), "wall": wall, "p50": pct(ok, 0.5), "p95": pct(ok, 0.95),
            "throughput": len(ok) / wall if wall else 0.0, "mean_batch": (after[1] - before[1]) / batches if batches else 0.0,
            "reject_p50": pct([t for code, t, _ in results if code == 429], 0.5),
            "retry_after": (min(retry_after), pct(retry_after, 0.5), max(retry_after)) if retry_after else None}


def mean_batch_state(metrics_text: str) -> tuple[float, float]:
    """(generate calls, jobs answered) from the batch-size histogram."""
    values = {"count": 0.0, "sum": 0.0}
    for line in metrics_text.splitlines():
        if line.startswith("ragtune_generation_batch_size_count"):
            values["count"] = float(line.split()[-1])
        elif line.startswith("ragtune_generation_batch_size_sum"):
            values["sum"] = float(line.split()[-1])
    return values["count"], values["sum"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fake", action="store_true", help="hashing embedder + fixed-cost fake generator")
    parser.add_argument("--requests", type=int, default=200, help="concurrent requests in the burst")
    parser.add_argument("--batching-requests", type=int, default=None, help="concurrent requests in phase 2 (16 fake, 4 real)")
    parser.add_argument("--queue-size", type=int, default=64, help="generation queue (a hard cap; admission is bounded "
                        "by what the measured service rate can finish within the request timeout)")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("-k", type=int, default=None, help="passages per question (3 fake, 2 real)")
    parser.add_argument("--batch-wait-ms", type=float, default=50.0, help="worker wait to fill a batch")
    parser.add_argument("--skip-burst", action="store_true", help="only phase 2 (batching off vs on)")
    parser.add_argument("--skip-batching", action="store_true", help="only phase 1 (the burst)")
    parser.add_argument("--request-timeout", type=float, default=120.0, help="the server's request timeout (s)")
    parser.add_argument("--time-limit", type=float, default=600.0, help="client seconds per phase")
    args = parser.parse_args()
    args.batching_requests = args.batching_requests or (16 if args.fake else 4)
    args.k = args.k or (3 if args.fake else 2)

    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ragtune.progress import set_progress

    set_progress(False)
    with tempfile.TemporaryDirectory() as tmp:
        index = build_index(Path(tmp) / "index", args.fake)
        generator = FakeGenerator() if args.fake else None  # None: `ragtune serve` with the bundled models
        print(f"server: {'fake-cost generator, in-process' if args.fake else 'ragtune serve (bundled SmolLM2-135M), own process'}, "
              f"{len(index.documents())} documents, {len(index)} chunks, k={args.k}, max_tokens={args.max_tokens}")

        if not args.skip_burst:
            burst_stats = run_phase(index, generator, args.requests, args.max_tokens, args.time_limit, args.request_timeout,
                                    queue_size=args.queue_size, max_batch=8, k=args.k,
                                    batch_wait_ms=args.batch_wait_ms)
            print(f"\nphase 1: {args.requests} concurrent chat requests, queue {args.queue_size}, max_batch 8, "
                  f"request timeout {args.request_timeout:g}s")
            print(f"{'status':>8} {'count':>6}")
            for code, count in sorted(burst_stats["codes"].items()):
                print(f"{code:>8} {count:>6}")
            fivexx = sum(c for code, c in burst_stats["codes"].items() if code >= 500 or code < 0)
            print(f"5xx/errors: {fivexx}   answered p50 {burst_stats['p50']:.2f}s  p95 {burst_stats['p95']:.2f}s  "
                  f"429 p50 {burst_stats['reject_p50'] * 1000:.0f}ms  throughput {burst_stats['throughput']:.2f} answers/s  "
                  f"mean batch {burst_stats['mean_batch']:.1f}  wall {burst_stats['wall']:.1f}s")
            if burst_stats["retry_after"]:
                print("429 Retry-After s: min {} / p50 {} / max {}".format(*burst_stats["retry_after"]))

        if args.skip_batching:
            return

        print(f"\nphase 2: {args.batching_requests} concurrent requests, dynamic batching off vs on")
        print(f"{'max_batch':>9} {'answered':>8} {'wall s':>8} {'answers/s':>10} {'p50 s':>7} {'p95 s':>7} {'mean batch':>10} {'ratio':>6}")
        base = None
        for max_batch in (1, max(2, min(8, args.batching_requests))):
            stats = run_phase(index, generator, args.batching_requests, args.max_tokens, args.time_limit, args.request_timeout,
                              queue_size=max(args.queue_size, args.batching_requests), max_batch=max_batch, k=args.k,
                              batch_wait_ms=args.batch_wait_ms)
            base = base or stats["throughput"]
            print(f"{max_batch:>9} {stats['ok']:>8} {stats['wall']:>8.1f} {stats['throughput']:>10.2f} {stats['p50']:>7.2f} "
                  f"{stats['p95']:>7.2f} {stats['mean_batch']:>10.1f} {stats['throughput'] / base:>6.2f}")


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    main()
