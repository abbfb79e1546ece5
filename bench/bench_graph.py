"""Graph retrieval: multi-hop recall (graph modes vs hybrid), answer F1, and graph build cost as the corpus grows.

    .venv/bin/python bench/bench_graph.py [--skip-scale] [--answers] [--sizes 1000,10000] [--embedder bundled]

1. Multi-hop set (src/ragtune/sample/multihop.jsonl, 20 questions, two gold documents each) over the handbook
   index: per mode, pair recall@k (both gold docs among the top-k hits) and doc recall@k (share of gold docs
   found), k = 3, 5, 10; ratios against hybrid measured in the same run. Then gold-document recall on the 90
   single-document questions (does the graph cost anything on simple questions?).
2. --answers: answer F1/EM with the bundled LLM (ragtune.pipeline.answer, k=5) for hybrid vs graph-hybrid.
3. Scale (../shared/data/scifact abstracts, hash embedder so embedding does not drown the figures): index
   build time, graph build time, graph size and index size at ~1k and ~10k chunks, plus the time of an
   incremental add of 5 documents (graph sync) vs a full graph rebuild.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SCIFACT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scifact"
MODES = ("bm25", "dense", "hybrid", "graph-local", "graph-global", "graph-hybrid")
KS = (3, 5, 10)


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def multihop(embedder: str, answers: bool) -> None:
    import numpy as np

    from ragtune.config import EmbedConfig, IndexConfig
    from ragtune.graph.store import graph_dir, load_graph
    from ragtune.index import Index
    from ragtune.ingest.loaders import load_documents
    from ragtune.retrieve import open_retriever
    from ragtune.sample import handbook_dir, load_multihop

    questions = load_multihop()
    tmp = Path(tempfile.mkdtemp(prefix="bench-graph-"))
    try:
        index = Index.create(tmp / "ix", IndexConfig(embed=EmbedConfig(model=embedder)))
        start = time.perf_counter()
        index.add_documents(load_documents([handbook_dir()]).documents)
        index_s = time.perf_counter() - start
        start = time.perf_counter()
        _state, graph = load_graph(index)
        graph_s = time.perf_counter() - start
        print(f"\nhandbook: {len(index)} chunks; index build {index_s:.2f}s ({embedder} embedder), graph build "
              f"{graph_s:.2f}s; {graph.n_entities} entities, {graph.n_edges} edges, "
              f"graph folder {folder_mb(graph_dir(index.path)):.3f} MB")
        texts = [q.question for q in questions]
        gold = [set(q.metadata["doc_ids"]) for q in questions]
        table = {}
        for mode in MODES:
            retriever = open_retriever(index, mode)
            retriever.retrieve(texts[:1], k=1)  # warm-up: builds lazily cached structures
            start = time.perf_counter()
            hits = retriever.retrieve(texts, k=max(KS))
            ms = (time.perf_counter() - start) * 1000 / len(texts)
            row = {}
            for k in KS:
                found = [{h.chunk.doc_id for h in hs[:k]} & g for hs, g in zip(hits, gold)]
                row[f"pair@{k}"] = float(np.mean([len(f) == len(g) for f, g in zip(found, gold)]))
                row[f"doc@{k}"] = float(np.mean([len(f) / len(g) for f, g in zip(found, gold)]))
            row["ms/q"] = ms
            table[mode] = row
        cols = [f"pair@{k}" for k in KS] + [f"doc@{k}" for k in KS] + ["ms/q"]
        print(f"\nmulti-hop recall, {len(questions)} questions (pair = both gold docs in top-k)")
        print(f"{'mode':14s}" + "".join(f"{c:>9s}" for c in cols) + f"{'pair@5 vs hybrid':>18s}")
        for mode, row in table.items():
            base = table["hybrid"]["pair@5"]
            ratio = f"{row['pair@5'] / base:.2f}x" if base else "n/a"
            print(f"{mode:14s}" + "".join(f"{row[c]:9.3f}" if c != "ms/q" else f"{row[c]:9.1f}" for c in cols)
                  + f"{ratio:>18s}")
        single_hop(index)
        if answers:
            answer_f1(index, questions)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def single_hop(index) -> None:
    """Do the graph modes cost anything on simple questions? Gold-document recall on the 90 one-document questions."""
    import numpy as np

    from ragtune.sample import load_questions
    from ragtune.retrieve import open_retriever

    questions = load_questions()
    texts = [q.question for q in questions]
    print(f"\nsingle-document questions ({len(texts)}): recall of the gold document")
    print(f"{'mode':14s}{'@1':>8s}{'@3':>8s}{'@5':>8s}")
    for mode in ("hybrid", "graph-local", "graph-global", "graph-hybrid"):
        hits = open_retriever(index, mode).retrieve(texts, k=5)
        recall = [np.mean([q.doc_id in {h.chunk.doc_id for h in hs[:k]} for q, hs in zip(questions, hits)])
                  for k in (1, 3, 5)]
        print(f"{mode:14s}" + "".join(f"{r:8.3f}" for r in recall))


def answer_f1(index, questions) -> None:
    import numpy as np

    from ragtune.evaluate.answer_metrics import exact_match_batch, f1_batch
    from ragtune.config import GenerateConfig
    from ragtune.generate.registry import load_generator
    from ragtune.pipeline import AnswerSettings, answer
    from ragtune.retrieve import open_retriever

    config = GenerateConfig()
    generator = load_generator(config)
    settings = AnswerSettings.resolve(config, index.embedder)  # what `ask` uses
    texts = [q.question for q in questions]
    golds = [list(q.gold_answers) for q in questions]
    print(f"\nanswer quality with the bundled LLM ({len(texts)} multi-hop questions, k=5)")
    print(f"{'mode':14s}{'F1':>8s}{'EM':>8s}{'s total':>9s}")
    for mode in ("hybrid", "graph-hybrid"):
        start = time.perf_counter()
        preds = answer(texts, generator, open_retriever(index, mode), settings, k=5, arm=mode)
        seconds = time.perf_counter() - start
        answers_ = [p.answer for p in preds]
        print(f"{mode:14s}{np.mean(f1_batch(answers_, golds)):8.3f}{np.mean(exact_match_batch(answers_, golds)):8.3f}"
              f"{seconds:9.1f}")


def scifact_documents(limit_docs: int):
    from ragtune.types import Document

    docs = []
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            docs.append(Document(doc_id=row["_id"], text=row["text"], title=row.get("title", "")))
            if len(docs) >= limit_docs:
                break
    return docs


def scale(sizes: list[int]) -> None:
    from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig
    from ragtune.graph.communities import load_communities
    from ragtune.graph.entity_graph import EntityGraph
    from ragtune.graph.store import graph_dir, load_graph, load_records
    from ragtune.index import Index

    if not SCIFACT.is_dir():
        print(f"\nSciFact not found at {SCIFACT}; skipping the scale figures.")
        return
    config = IndexConfig(embed=EmbedConfig(model="hash:256"), chunk=ChunkConfig(chunk_tokens=64, overlap_tokens=8))
    print("\ngraph build cost on SciFact abstracts (hash embedder; chunk_tokens=64)")
    print(f"{'chunks':>7s}{'docs':>6s}{'index s':>9s}{'graph s':>9s}{'graph/idx':>10s}{'comm s':>8s}"
          f"{'idx MB':>8s}{'graph MB':>9s}{'entities':>9s}{'edges':>8s}{'+5 docs s':>10s}{'rebuild s':>10s}")
    for target in sizes:
        n_docs = max(10, target // 7)  # ~7 chunks per abstract at 64 tokens
        docs = scifact_documents(n_docs + 5)
        tmp = Path(tempfile.mkdtemp(prefix="bench-graph-scale-"))
        try:
            index = Index.create(tmp / "ix", config)
            start = time.perf_counter()
            index.add_documents(docs[:n_docs])
            index_s = time.perf_counter() - start
            start = time.perf_counter()
            state, graph = load_graph(index)
            graph_s = time.perf_counter() - start
            start = time.perf_counter()
            load_communities(index.path, state, graph)
            comm_s = time.perf_counter() - start
            graph_mb = folder_mb(graph_dir(index.path))
            index_mb = folder_mb(index.path) - graph_mb
            start = time.perf_counter()
            index.add_documents(docs[n_docs:])  # the commit hook syncs the graph: only 5 documents extracted
            load_graph(index)
            add_s = time.perf_counter() - start
            start = time.perf_counter()
            EntityGraph.build(load_records(index, persist=False).mentions)  # in-memory rebuild from stored parts
            rebuild_s = time.perf_counter() - start
            print(f"{len(state.chunks):7d}{n_docs:6d}{index_s:9.2f}{graph_s:9.2f}{graph_s / index_s:9.2f}x"
                  f"{comm_s:8.2f}{index_mb:8.2f}{graph_mb:9.2f}{graph.n_entities:9d}{graph.n_edges:8d}"
                  f"{add_s:10.2f}{rebuild_s:10.2f}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedder", default="bundled", help="'bundled' (MiniLM) or 'hash:256' for the multi-hop part")
    ap.add_argument("--answers", action="store_true", help="also measure answer F1 with the bundled LLM (slow)")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--skip-multihop", action="store_true")
    ap.add_argument("--sizes", default="1000,10000")
    args = ap.parse_args()

    from ragtune.progress import set_progress

    set_progress(False)
    if not args.skip_multihop:
        multihop(args.embedder, args.answers)
    if not args.skip_scale:
        scale([int(s) for s in args.sizes.split(",")])
    return 0


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    sys.exit(main())
