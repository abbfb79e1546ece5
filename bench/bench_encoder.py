"""Encoder throughput and query latency: bare sentence-transformers `encode` vs ragtune's ONNX Runtime paths.

    .venv/bin/python bench/bench_encoder.py [--docs 300] [--rounds 3] [--queries 60]

On the same SciFact chunks in the same process, rounds alternated (A/B/C, A/B/C, ...) so every path shares the
machine's load, medians reported: chunks/s of bare `SentenceTransformer.encode`, the ONNX fp32 document encoder
(fused graph, length batches, <= 2 threads) and the int8 one, with ratios to the bare encode; then single-query
p50 latency of PyTorch's direct forward vs ONNX fp32 / int8 on one thread (queries interleaved the same way),
and the fp32 path's max |difference| to sentence-transformers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scifact"
QUERIES = ["how many days of paid leave", "does vitamin d reduce fracture risk in older adults",
           "ALDH1 expression and breast cancer outcome", "microRNA regulation of T cell differentiation"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--queries", type=int, default=60)
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"SciFact data not found at {DATA}; nothing to measure.")
        return 0

    import numpy as np

    from ragtune.config import IndexConfig
    from ragtune.index import get_embedder
    from ragtune.index.embed import chunk_embed_text
    from ragtune.index.onnx_encoder import OnnxEncoder, default_threads, graph_for
    from ragtune.ingest import chunk_documents, load_tokenizer
    from ragtune.types import Document

    docs = []
    with open(DATA / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            docs.append(Document(doc_id=str(rec["_id"]), text=rec["text"], title=rec.get("title", "")))
            if len(docs) >= args.docs:
                break
    config = IndexConfig()
    texts = [chunk_embed_text(c.title, c.text) for c in chunk_documents(docs, config.chunk, load_tokenizer())]
    embedder = get_embedder("bundled")
    st, tokenizer, length = embedder._st, embedder._st[0].tokenizer, embedder.max_seq_length
    threads = default_threads()
    encoders = {p: OnnxEncoder(tokenizer, graph_for(st[0], embedder.model_path, p), length, threads, p)
                for p in ("fp32", "int8")}
    batch = config.embed.batch_size

    def bare(items: list[str]) -> np.ndarray:
        return st.encode(items, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)

    paths = {"bare SentenceTransformer.encode": bare,
             f"ONNX fp32 ({threads} threads)": lambda items: encoders["fp32"].encode(items, batch),
             f"ONNX int8 ({threads} threads)": lambda items: encoders["int8"].encode(items, batch)}
    if threads > 1:  # on an oversubscribed machine one thread can beat two (no waiting for a descheduled peer)
        single = OnnxEncoder(tokenizer, encoders["fp32"].graph, length, 1)
        paths["ONNX fp32 (1 thread)"] = lambda items: single.encode(items, batch)
    reference = bare(texts)
    diff = float(np.abs(paths[f"ONNX fp32 ({threads} threads)"](texts) - reference).max())
    cosine = float((paths[f"ONNX int8 ({threads} threads)"](texts) * reference).sum(1).min())
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    for r in range(args.rounds):
        for name, run in (paths.items() if r % 2 == 0 else reversed(paths.items())):  # alternate the order too
            t0 = time.perf_counter()
            run(texts)
            seconds[name].append(time.perf_counter() - t0)
        print(f"  round {r + 1}: " + ", ".join(f"{s[-1]:.1f}s" for s in seconds.values())
              + f" (load {os.getloadavg()[0]:.1f})", flush=True)

    queries = {"PyTorch direct forward (1 thread)": embedder._encode_direct,
               "ONNX fp32 (1 thread)": OnnxEncoder(tokenizer, encoders["fp32"].graph, length, 1).encode,
               "ONNX int8 (1 thread)": OnnxEncoder(tokenizer, encoders["int8"].graph, length, 1, "int8").encode}
    latency: dict[str, list[float]] = {name: [] for name in queries}
    for i in range(args.queries + 5):
        for name, run in queries.items():
            t0 = time.perf_counter()
            run([QUERIES[i % len(QUERIES)]])
            if i >= 5:  # warm-up
                latency[name].append((time.perf_counter() - t0) * 1000)

    base = statistics.median(seconds["bare SentenceTransformer.encode"])
    print(f"\n{len(texts)} SciFact chunks ({args.docs} docs), median of {args.rounds} alternated rounds, "
          f"load avg {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    print(f"{'document path':40} {'seconds':>8} {'chunks/s':>9} {'ratio':>6}")
    for name, values in seconds.items():
        med = statistics.median(values)
        print(f"{name:40} {med:8.2f} {len(texts) / med:9.1f} {base / med:6.2f}")
    print(f"fp32 ONNX max |diff| to sentence-transformers: {diff:.2e}; int8 min cosine to it: {cosine:.4f}")
    print(f"\n{'query path':40} {'p50 ms':>8} {'p95 ms':>8}")
    for name, values in latency.items():
        print(f"{name:40} {statistics.median(values):8.2f} {float(np.percentile(values, 95)):8.2f}")
    return 0


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    raise SystemExit(main())
