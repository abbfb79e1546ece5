"""Retrieval evaluation on BEIR-format data: nDCG@k, Recall@k and MRR@k as BEIR / pytrec_eval define them.

Definitions (the same as beir.retrieval.evaluation and the LlamaIndex peer script in ../shared/peer):
- documents are ranked trec_eval style: score descending, ties broken by doc id descending;
- nDCG@k: gain = qrels relevance (linear), discount log2(rank + 1); the ideal DCG uses all judged
  relevant documents of the query; a query without relevant documents scores 0;
- Recall@k: relevant documents (rel > 0) in the top k / all relevant documents;
- MRR@k: 1 / rank of the first relevant document within the top k, else 0;
- averages over every query in qrels; a query the run does not answer scores 0.
Chunk hits become document scores by the max over a document's chunks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.config import IndexConfig, RetrieveConfig
from ragtune.errors import InputError
from ragtune.types import Hit

logger = logging.getLogger(__name__)

Run = Mapping[str, Mapping[str, float]]  # qid -> {doc_id: score}
Qrels = Mapping[str, Mapping[str, int]]  # qid -> {doc_id: relevance}


# ---- metrics (pure functions) ---------------------------------------------------------------------------------
def rank_docs(doc_scores: Mapping[str, float]) -> list[str]:
    """trec_eval order: score descending, ties by doc id descending."""
    return [d for d, _ in sorted(doc_scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def ndcg_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    n_rel = sum(1 for r in rels.values() if r > 0)
    if n_rel == 0:
        return 0.0
    return sum(1 for d in ranked[:k] if rels.get(d, 0) > 0) / n_rel


def mrr_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    for i, d in enumerate(ranked[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def retrieval_metrics(run: Run, qrels: Qrels, ndcg_k: int = 10, recall_ks: Sequence[int] = (10, 100), mrr_k: int = 10) -> dict[str, float]:
    """Mean nDCG@ndcg_k, Recall@each k and MRR@mrr_k over the queries of qrels (primary: ndcg@10)."""
    if not qrels:
        raise InputError("qrels are empty: nothing to evaluate")
    per: dict[str, list[float]] = {f"ndcg@{ndcg_k}": [], f"mrr@{mrr_k}": [], **{f"recall@{k}": [] for k in recall_ks}}
    for qid, rels in qrels.items():
        ranked = rank_docs(run.get(qid, {}))
        per[f"ndcg@{ndcg_k}"].append(ndcg_at_k(ranked, rels, ndcg_k))
        for k in recall_ks:
            per[f"recall@{k}"].append(recall_at_k(ranked, rels, k))
        per[f"mrr@{mrr_k}"].append(mrr_at_k(ranked, rels, mrr_k))
    out = {name: statistics.fmean(values) for name, values in per.items()}
    out["n_queries"] = len(qrels)
    return out


def hits_to_doc_scores(hits: Sequence[Hit], depth: int = 100) -> dict[str, float]:
    """Chunk hits -> {doc_id: max chunk score}, keeping the `depth` best documents."""
    scores: dict[str, float] = {}
    for hit in hits:
        doc_id = hit.chunk.doc_id
        if doc_id not in scores or hit.score > scores[doc_id]:
            scores[doc_id] = hit.score
    return dict(sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:depth])


# ---- BEIR data -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BeirData:
    """A BEIR dataset folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""

    root: Path
    queries: dict[str, str]  # qid -> text, only the queries of the split's qrels (qrels order)
    qrels: dict[str, dict[str, int]]

    @property
    def corpus_path(self) -> Path:
        return self.root / "corpus.jsonl"


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """BEIR qrels TSV (query-id, corpus-id, score; header optional) -> {qid: {doc_id: rel}} in file order."""
    qrels: dict[str, dict[str, int]] = {}
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise InputError(f"qrels file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    for number, line in enumerate(lines, start=1):
        parts = line.strip().split("\t")
        if not line.strip() or (number == 1 and parts[0] == "query-id"):
            continue
        if len(parts) != 3:
            raise InputError(f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score', got {line!r}")
        try:
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
        except ValueError as exc:
            raise InputError(f"{path}:{number}: score is not an integer: {parts[2]!r}") from exc
    return qrels


def load_beir(root: str | Path, split: str = "test") -> BeirData:
    """Queries and qrels of one split of a BEIR folder (the corpus is ingested from corpus.jsonl)."""
    root = Path(root)
    for needed in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (root / needed).is_file():
            raise InputError(f"{root} is not a BEIR dataset folder: missing {needed}")
    qrels = load_qrels(root / "qrels" / f"{split}.tsv")
    all_queries: dict[str, str] = {}
    with open(root / "queries.jsonl", encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                all_queries[str(record["_id"])] = str(record["text"])
            except (json.JSONDecodeError, KeyError, TypeError, RecursionError) as exc:
                raise InputError(f"{root / 'queries.jsonl'}:{number}: bad query line ({exc})") from exc
    missing = [q for q in qrels if q not in all_queries]
    if missing:
        raise InputError(f"{len(missing)} qrels queries have no text in queries.jsonl, e.g. {missing[0]!r}")
    return BeirData(root=root, queries={q: all_queries[q] for q in qrels}, qrels=qrels)


def beir_index_dir(root: str | Path, config: IndexConfig) -> Path:
    """The cached index folder for a BEIR corpus and index config: cache_dir()/beir/<hash>."""
    from ragtune.paths import cache_dir

    digest = hashlib.sha256()
    with open(Path(root) / "corpus.jsonl", "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    dumped = config.model_dump()
    if not config.embed.windows:  # an index without sentence windows keeps the folder it had before they existed
        dumped["embed"].pop("windows")
    digest.update(json.dumps(dumped, sort_keys=True).encode())
    return cache_dir() / "beir" / digest.hexdigest()[:16]


def build_beir_index(root: str | Path, index_dir: str | Path | None = None, config: IndexConfig | None = None, embedder: Any = None) -> Any:
    """Open (or build) the index of a BEIR corpus; re-running adds nothing (content hashes)."""
    from ragtune.index import Index
    from ragtune.index.embed import with_precision
    from ragtune.ingest import load_documents

    config = with_precision(config or IndexConfig())  # the cache folder is named by the precision it holds
    path = Path(index_dir) if index_dir else beir_index_dir(root, config)
    index = Index.open_or_create(path, config if index_dir is None else None, embedder=embedder)
    if len(index) == 0 or index_dir is None:
        result = load_documents([Path(root) / "corpus.jsonl"])
        for skipped in result.skipped:
            logger.warning("skipped %s: %s", skipped.path, skipped.reason)
        index.add_documents(result.documents)
    return index


# ---- evaluation -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetrievalEval:
    """Metrics of one retriever on one query set, with the document run and per-query latency."""

    mode: str
    metrics: dict[str, float]
    run: dict[str, dict[str, float]] = field(repr=False)
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def primary_metric(self) -> str:
        return "ndcg@10"


def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (numpy's default)."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def evaluate_retrieval(
    retriever: Any,
    queries: Mapping[str, str],
    qrels: Qrels,
    mode: str = "",
    depth: int = 100,
    chunk_depth: int | None = None,
    timed: bool = False,
) -> RetrievalEval:
    """Run every query, reduce chunk hits to documents (max), score with BEIR definitions.

    With timed=True queries run one at a time (after one warm-up) and p50/p95 latency is recorded;
    otherwise they run as one batch.
    """
    qids = list(queries)
    texts = [queries[q] for q in qids]
    k_chunks = chunk_depth or depth * 2  # a document can own several of the top chunks
    latencies: list[float] = []
    if timed:
        retriever.retrieve(texts[:1], k=k_chunks)
        results = []
        for text in texts:
            start = time.perf_counter()
            results.extend(retriever.retrieve([text], k=k_chunks))
            latencies.append((time.perf_counter() - start) * 1000)
    else:
        results = retriever.retrieve(texts, k=k_chunks)
    run = {qid: hits_to_doc_scores(hits, depth) for qid, hits in zip(qids, results)}
    metrics = retrieval_metrics(run, qrels)
    latency = {}
    if latencies:
        latency = {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "mean": statistics.fmean(latencies)}
    return RetrievalEval(mode=mode, metrics=metrics, run=run, latency_ms=latency)


def evaluate_beir(
    root: str | Path,
    split: str = "test",
    modes: Sequence[str] = ("hybrid",),
    index_dir: str | Path | None = None,
    index_config: IndexConfig | None = None,
    retrieve_config: RetrieveConfig | None = None,
    timed: bool = False,
    embedder: Any = None,
) -> list[RetrievalEval]:
    """Build or reuse the index of a BEIR corpus and evaluate each retrieval mode on a split."""
    from ragtune.retrieve import build_retriever

    from ragtune.errors import ConfigError
    from ragtune.retrieve import retrieval_modes

    bad = [m for m in modes if m not in retrieval_modes()]
    if bad:
        raise ConfigError(f"unknown retrieval mode(s) {bad}: choose from {', '.join(retrieval_modes())}")
    data = load_beir(root, split)
    index = build_beir_index(root, index_dir, index_config, embedder=embedder)
    judged = {doc for docs in data.qrels.values() for doc in docs}
    if judged and not judged & {d.doc_id for d in index.documents()}:  # every figure would be 0: say why instead
        where = "it holds no documents" if len(index) == 0 else "it holds other documents"
        raise InputError(f"none of the {len(judged)} documents the qrels judge is in the index ({where}): check "
                         f"{Path(root) / 'corpus.jsonl'}" + (" and --index" if index_dir else ""))
    base = retrieve_config or RetrieveConfig()
    out = []
    for mode in modes:
        retriever = build_retriever(index, RetrieveConfig(**{**base.model_dump(), "mode": mode}))
        out.append(evaluate_retrieval(retriever, data.queries, data.qrels, mode=mode, timed=timed))
    return out
