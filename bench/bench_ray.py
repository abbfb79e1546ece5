"""Ray against the single-process path, in one run: ingestion chunks/s and comparison questions/s.

Ingestion: the first N SciFact documents (shared data) embedded with the bundled MiniLM into a fresh index —
`Index.add_documents` in this process, then `ray_add_documents` with 1 and 2 Ray Data actors. Comparison: the
first Q questions of the bundled handbook sample with the bundled LLM, arms base,rag — `run_compare` in this
process, then with `RayAnswerExecutor` at 1 and 2 workers. Every figure is wall time including model loads (the
single process loads each model once; every Ray worker loads its own). The local Ray instance's start is timed
apart, and its listening sockets are checked to be on loopback only.

    .venv/bin/python bench/bench_ray.py --docs 300 --questions 16
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
SAMPLE = ROOT / "src" / "ragtune" / "sample"


def scifact_docs(n: int) -> list:
    from ragtune.types import Document

    docs = []
    with SCIFACT.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            docs.append(Document(str(row["_id"]), row["text"], row.get("title", "")))
            if len(docs) == n:
                break
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--arms", default="base,rag")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    from ragtune.config import IndexConfig
    from ragtune.distributed.ray_cluster import exposed_listeners, ray_session
    from ragtune.distributed.ray_compare import RayAnswerExecutor
    from ragtune.distributed.ray_ingest import ray_add_documents
    from ragtune.index import Index
    from ragtune.ingest import load_documents
    from ragtune.progress import set_progress
    from ragtune.workflows.compare import CompareConfig, run_compare

    set_progress(False)
    workers = [int(w) for w in args.workers.split(",")]
    docs = scifact_docs(args.docs)
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    questions = work / "questions.jsonl"
    questions.write_text("".join((SAMPLE / "questions.jsonl").read_text().splitlines(True)[: args.questions]))
    handbook = Index.create(work / "handbook", IndexConfig())
    handbook.add_documents(load_documents([SAMPLE / "handbook"]).documents)
    arms = tuple(args.arms.split(","))
    answers = args.questions * len(arms)

    def ingest(name: str, add) -> dict:
        index = Index.create(work / name, IndexConfig())
        t0 = time.perf_counter()
        stats = add(index)
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "chunks": stats.chunks_added, "rate": stats.chunks_added / seconds}

    def compare(name: str, executor) -> dict:
        config = CompareConfig(index=str(work / "handbook"), questions=str(questions), out=str(work / name),
                               arms=arms, batch_size=8, seed=0)
        t0 = time.perf_counter()
        run = run_compare(config, executor=executor)
        seconds = time.perf_counter() - t0
        rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
        return {"seconds": seconds, "rate": answers / seconds,
                "answers": [(r["arm"], r["qid"], r["answer"]) for r in rows]}

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.docs} SciFact docs; "
          f"{args.questions} questions x arms {','.join(arms)} = {answers} answers; bundled models", flush=True)
    print(f"{'stage':8} {'path':18} {'seconds':>8} {'rate':>18} {'vs single':>9}", flush=True)
    rows: list[tuple[str, str, dict]] = []
    base: dict[str, float] = {}

    def record(stage: str, path: str, result: dict) -> None:
        rows.append((stage, path, result))
        base.setdefault(stage, result["rate"])  # the single-process run comes first
        unit = "chunks/s" if stage == "ingest" else "answers/s"
        print(f"{stage:8} {path:18} {result['seconds']:8.1f} {result['rate']:8.2f} {unit:9} "
              f"{result['rate'] / base[stage]:8.2f}x", flush=True)

    record("ingest", "single process", ingest("plain", lambda ix: ix.add_documents(docs)))
    record("compare", "single process", compare("run-plain", None))
    t0 = time.perf_counter()
    with ray_session("local"):
        start_s = time.perf_counter() - t0
        exposed = exposed_listeners()
        print(f"local Ray instance start: {start_s:.1f} s; non-loopback listeners of its processes: {len(exposed)}",
              flush=True)
        for line in exposed:
            print("  ", line)
        for n in workers:
            record("ingest", f"ray, {n} worker(s)", ingest(f"ray{n}", lambda ix, n=n: ray_add_documents(ix, docs, workers=n)))
        for n in workers:
            record("compare", f"ray, {n} worker(s)", compare(f"run-ray{n}", RayAnswerExecutor(workers=n)))
    reference = next(r["answers"] for stage, path, r in rows if stage == "compare")
    same = all(r["answers"] == reference for stage, _, r in rows if stage == "compare")
    print(f"compare predictions identical to the single-process run: {same}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
