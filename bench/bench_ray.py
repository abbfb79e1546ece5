"""Ray against the single-process path, in one run: ingestion chunks/s and comparison questions/s.

Ingestion: the first N SciFact documents (shared data), written out as N .txt files, read, chunked and embedded
with the bundled MiniLM into a fresh index — `load_documents` + `Index.add_documents` in this process, then
`load_on_ray` (Ray Data tasks read the files) + `ray_add_documents` (Ray Data actors chunk and embed) with 1 and 2
workers; the figure covers reading too. Comparison: the
first Q questions of the bundled handbook sample with the bundled LLM, arms base,rag — `run_compare` in this
process, then with `RayAnswerExecutor` at 1 and 2 workers. Every figure is wall time including model loads (the
single process loads each model once; every Ray worker loads its own). The local Ray instance's start is timed
apart, and its listening sockets are checked to be on loopback only.

    .venv/bin/python bench/bench_ray.py --docs 300 --questions 16
    .venv/bin/python bench/bench_ray.py --quick --stages ingest     # a check that it runs (40 docs)
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


def write_scifact_files(n: int, folder: Path) -> Path:
    """The first n SciFact documents as n .txt files (title line, blank line, abstract) in folder."""
    folder.mkdir(parents=True)
    with SCIFACT.open(encoding="utf-8") as fh:
        for count, line in enumerate(fh):
            if count == n:
                break
            row = json.loads(line)
            (folder / f"{row['_id']}.txt").write_text(f"{row.get('title', '')}\n\n{row['text']}\n", encoding="utf-8")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--arms", default="base,rag")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--stages", default="ingest,compare")
    parser.add_argument("--quick", action="store_true", help="40 documents, 2 questions: a check that it runs")
    args = parser.parse_args()
    if args.quick:
        args.docs, args.questions = 40, 2
    stages = set(args.stages.split(","))
    from ragtune.config import IndexConfig
    from ragtune.distributed.ray_cluster import exposed_listeners, ray_session
    from ragtune.distributed.ray_compare import RayAnswerExecutor
    from ragtune.distributed.ray_ingest import load_on_ray, ray_add_documents
    from ragtune.index import Index
    from ragtune.ingest import discover, load_documents
    from ragtune.progress import set_progress
    from ragtune.workflows.compare import CompareConfig, run_compare

    set_progress(False)
    workers = [int(w) for w in args.workers.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    corpus = write_scifact_files(args.docs, work / "scifact")
    questions = work / "questions.jsonl"
    questions.write_text("".join((SAMPLE / "questions.jsonl").read_text().splitlines(True)[: args.questions]))
    if "compare" in stages:
        Index.create(work / "handbook", IndexConfig()).add_documents(load_documents([SAMPLE / "handbook"]).documents)
    arms = tuple(args.arms.split(","))
    answers = args.questions * len(arms)

    def ingest(name: str, add) -> dict:
        index = Index.create(work / name, IndexConfig())
        t0 = time.perf_counter()
        stats = add(index)
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "chunks": stats.chunks_added, "rate": stats.chunks_added / seconds,
                "ids": sorted(c.chunk_id for c in index.chunks())}

    def ingest_here(index):
        return index.add_documents(load_documents([corpus]).documents, dedupe_content=True)

    def ingest_on_ray(index, n: int):
        result = load_on_ray(*discover([corpus]), workers=n)
        return ray_add_documents(index, result.documents, workers=n, dedupe_content=True)

    def compare(name: str, executor) -> dict:
        config = CompareConfig(index=str(work / "handbook"), questions=str(questions), out=str(work / name),
                               arms=arms, batch_size=8, seed=0, max_new_tokens=32)
        t0 = time.perf_counter()
        run = run_compare(config, executor=executor)
        seconds = time.perf_counter() - t0
        rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
        return {"seconds": seconds, "rate": answers / seconds,
                "answers": [(r["arm"], r["qid"], r["answer"]) for r in rows]}

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; stages {args.stages}: "
          f"{args.docs} SciFact files; {args.questions} questions x arms {','.join(arms)} = {answers} answers; "
          "bundled models", flush=True)
    print(f"{'stage':8} {'path':18} {'seconds':>8} {'rate':>18} {'vs single':>9}", flush=True)
    rows: list[tuple[str, str, dict]] = []
    base: dict[str, float] = {}

    def record(stage: str, path: str, result: dict) -> None:
        rows.append((stage, path, result))
        base.setdefault(stage, result["rate"])  # the single-process run comes first
        unit = "chunks/s" if stage == "ingest" else "answers/s"
        print(f"{stage:8} {path:18} {result['seconds']:8.1f} {result['rate']:8.2f} {unit:9} "
              f"{result['rate'] / base[stage]:8.2f}x", flush=True)

    if "ingest" in stages:
        record("ingest", "single process", ingest("plain", ingest_here))
    if "compare" in stages:
        record("compare", "single process", compare("run-plain", None))
    t0 = time.perf_counter()
    with ray_session("local"):
        start_s = time.perf_counter() - t0
        exposed = exposed_listeners()
        print(f"local Ray instance start: {start_s:.1f} s; non-loopback listeners of its processes: {len(exposed)}",
              flush=True)
        for line in exposed:
            print("  ", line)
        for n in workers if "ingest" in stages else []:
            record("ingest", f"ray, {n} worker(s)", ingest(f"ray{n}", lambda ix, n=n: ingest_on_ray(ix, n)))
        for n in workers if "compare" in stages else []:
            record("compare", f"ray, {n} worker(s)", compare(f"run-ray{n}", RayAnswerExecutor(workers=n)))
    for stage, key, what in (("ingest", "ids", "chunk ids"), ("compare", "answers", "predictions")):
        results = [r[key] for s, _, r in rows if s == stage]
        if results:
            print(f"{stage} {what} identical to the single-process run: {all(r == results[0] for r in results)}")
    sys.stdout.flush()


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    main()
