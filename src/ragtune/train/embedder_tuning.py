"""Fine-tune the dense embedder on queries synthesised from the index's own chunks (GPL-style domain adaptation).

>>> result = tune_embedder(Index.open("my-index"), "runs/emb-tuned", EmbedderTuneConfig(per_chunk=2))  # doctest: +SKIP

Steps: queries per chunk (ragtune.train.synth rules, optionally sentences of the chunk as queries — the inverse
cloze task —, or a QA file whose records name gold chunk ids), one BM25 hard negative per query (the best-scoring
chunk of another document that is not a near-duplicate of the positive), a validation split BY DOCUMENT (no
document's chunks on both sides), then in-batch-negative training with sentence-transformers'
MultipleNegativesRankingLoss (query, positive, hard negative), in its cached form (GradCache) by default: the
batch's texts are embedded `mini_batch_size` at a time, which bounds memory without changing the loss.
Validation recall@10 (among the validation queries' gold chunks and a seeded sample of the others,
`val_candidates` in all, so that an epoch's check costs the same on 10k or 1M chunks; sentence queries alone rank
their chunk without them, see validation_set) is measured before training and after every epoch; training stops
when it stops rising and the best weights are written. The output is a sentence-transformers folder, written to
a temp folder and renamed into place, with `ragtune_embedder.json` (base id and hash, data hash, config,
validation figures).

The loop is a plain PyTorch loop around the library's loss: sentence-transformers' SentenceTransformerTrainer
needs the `datasets` package, which ragtune does not depend on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.errors import ConfigError, InputError
from ragtune.index.store import index_location
from ragtune.progress import progress_task
from ragtune.types import Chunk

logger = logging.getLogger(__name__)

MANIFEST = "ragtune_embedder.json"
MIN_CHUNKS = 20  # fewer and neither training nor a by-document validation split means anything
NEAR_DUPLICATE = 0.8  # word-set Jaccard above which a BM25 candidate is the positive again, not a negative


@dataclass(frozen=True)
class EmbedderTuneConfig:
    per_chunk: int = 2  # synthesised queries per chunk
    sentence_queries: int = 0  # and per chunk, sentences taken out of it as queries (inverse cloze task)
    epochs: int = 1
    seed: int = 0
    batch_size: int = 32  # in-batch negatives: each query sees the other 31 positives and 32 hard negatives
    # texts embedded with gradients at once (GradCache: sentence-transformers' CachedMultipleNegativesRankingLoss,
    # the same loss and gradients as batch_size at once, so memory no longer grows with batch_size); 0: whole batch
    mini_batch_size: int = 8
    learning_rate: float = 2e-5
    max_chunks: int = 2000  # chunks sampled for query synthesis (training time grows with it)
    val_fraction: float = 0.1  # of documents
    max_seq_length: int = 256
    val_candidates: int = 4000  # chunks validation ranks among: its gold chunks + a seeded sample (0: all)


@dataclass(frozen=True)
class TrainPair:
    query: str
    chunk_id: str
    doc_id: str
    negative_id: str = ""
    positive_text: str = ""  # the positive's text when it is not the whole chunk (a sentence query's chunk without it)


@dataclass
class TuneResult:
    out: Path
    pairs: int
    val_pairs: int
    val_recall_before: float
    val_recall_after: float
    epochs_run: int
    seconds: float
    history: list[float] = field(default_factory=list)


def synth_pairs(chunks: list[Chunk], config: EmbedderTuneConfig) -> list[TrainPair]:
    """Rule-based questions for a seeded sample of chunks (no LLM, deterministic), and `sentence_queries` per chunk
    of sentence_pairs."""
    from ragtune.train.synth import synthesize_qa

    sample = list(chunks)
    if len(sample) > config.max_chunks:
        sample = random.Random(config.seed).sample(sample, config.max_chunks)
    pairs = []
    if config.per_chunk > 0:
        examples = synthesize_qa(sample, None, per_chunk=config.per_chunk, seed=config.seed, questions="rules").examples
        pairs = [TrainPair(e.question, e.chunk_id, e.doc_id) for e in examples if e.chunk_id]
    return pairs + sentence_pairs(sample, config.sentence_queries, config.seed)


def sentence_pairs(chunks: list[Chunk], per_chunk: int, seed: int, min_words: int = 6) -> list[TrainPair]:
    """The inverse cloze task (Lee et al., 2019): a sentence of a chunk is the query, the chunk WITHOUT that
    sentence the positive, so the embedder learns to match a statement to the context it belongs in rather than
    to the words it shares with it (claims and statements, not only questions). Chunks of one sentence give none.

    >>> c = Chunk(chunk_id="d#0", doc_id="d", title="T", text="Cats purr when they are content. They sleep a lot.")
    >>> [(p.query, p.positive_text) for p in sentence_pairs([c], 1, 0)]
    [('Cats purr when they are content.', 'T They sleep a lot.')]
    """
    from ragtune.index.embed import chunk_embed_text
    from ragtune.text import split_sentences

    rng = random.Random(seed)
    pairs = []
    for chunk in chunks if per_chunk > 0 else ():
        sentences = split_sentences(chunk.text)
        usable = [i for i, s in enumerate(sentences) if len(s.split()) >= min_words]
        if len(sentences) < 2 or not usable:
            continue
        for i in sorted(rng.sample(usable, min(per_chunk, len(usable)))):
            rest = " ".join(s for j, s in enumerate(sentences) if j != i)
            pairs.append(TrainPair(sentences[i], chunk.chunk_id, chunk.doc_id,
                                   positive_text=chunk_embed_text(chunk.title, rest)))
    return pairs


def pairs_from_qa_file(path: str | os.PathLike, by_id: dict[str, Chunk]) -> list[TrainPair]:
    """QA records ({"question", "chunk_id"} per line); InputError naming the first gold id not in the index."""
    pairs = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                question, chunk_id = str(record["question"]), str(record["chunk_id"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InputError(f"{path} line {number}: expected a JSON object with 'question' and 'chunk_id' ({exc})") from None
            if chunk_id not in by_id:
                raise InputError(f"{path} line {number}: gold chunk id {chunk_id!r} is not in the index")
            pairs.append(TrainPair(question, chunk_id, by_id[chunk_id].doc_id))
    return pairs


def _words(text: str) -> set[str]:
    return set(text.lower().split())


def mine_negatives(pairs: list[TrainPair], chunks: list[Chunk], bm25: Any, depth: int = 10) -> list[TrainPair]:
    """Each pair with its best BM25 chunk from another document that is not a near-duplicate of the positive."""
    row_of = {c.chunk_id: i for i, c in enumerate(chunks)}
    rng = random.Random(0)
    out = []
    for start in range(0, len(pairs), 256):
        group = pairs[start : start + 256]
        for pair, (rows, _scores) in zip(group, bm25.search([p.query for p in group], depth)):
            positive = _words(chunks[row_of[pair.chunk_id]].text)
            negative = ""
            for row in rows:
                candidate = chunks[int(row)]
                if candidate.doc_id == pair.doc_id:
                    continue
                words = _words(candidate.text)
                if len(words & positive) / max(1, len(words | positive)) > NEAR_DUPLICATE:
                    continue
                negative = candidate.chunk_id
                break
            while not negative:  # no usable BM25 match: a random chunk of another document (>= 2 documents checked)
                candidate = chunks[rng.randrange(len(chunks))]
                negative = candidate.chunk_id if candidate.doc_id != pair.doc_id else ""
            out.append(TrainPair(pair.query, pair.chunk_id, pair.doc_id, negative, pair.positive_text))
    return out


def split_by_document(pairs: list[TrainPair], fraction: float, seed: int) -> tuple[list[TrainPair], list[TrainPair]]:
    """(train, validation): a seeded share of documents goes to validation with all its pairs."""
    docs = sorted({p.doc_id for p in pairs})
    random.Random(seed).shuffle(docs)
    held = set(docs[: max(1, int(len(docs) * fraction))]) if len(docs) > 1 else set()
    return [p for p in pairs if p.doc_id not in held], [p for p in pairs if p.doc_id in held]


def recall_at_k(model: Any, queries: list[str], gold: list[int], vectors: np.ndarray, k: int = 10) -> float:
    """Share of `queries` whose gold row of `vectors` (normalised candidate texts) is in their top k."""
    if not queries:
        return float("nan")
    encoded = model.encode(queries, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    scores = encoded @ vectors.T  # (queries, candidates)
    rows = np.array(gold)
    better = (scores > scores[np.arange(len(queries)), rows][:, None]).sum(1)
    return float((better < k).mean())


def validation_set(chunks: list[Chunk], val: list[TrainPair], text_of: dict[str, str], size: int,
                   seed: int) -> tuple[list[str], list[int], list[str]]:
    """(queries, gold rows, candidate texts) of validation.

    Questions (pairs whose positive is the whole chunk) rank among validation_candidates. Sentence queries lie
    verbatim in their chunk, so when validation has only those, each ranks its chunk WITHOUT it (the training
    task) among a sample of chunks of other documents."""
    questions = [p for p in val if not p.positive_text]
    if questions or not val:
        candidates = validation_candidates(chunks, questions, size, seed)
        row_of = {c.chunk_id: i for i, c in enumerate(candidates)}
        return ([p.query for p in questions], [row_of[p.chunk_id] for p in questions],
                [text_of[c.chunk_id] for c in candidates])
    held = {p.doc_id for p in val}
    others = validation_candidates([c for c in chunks if c.doc_id not in held], [], max(0, size - len(val)) if size
                                   else 0, seed)
    return ([p.query for p in val], list(range(len(val))),
            [p.positive_text for p in val] + [text_of[c.chunk_id] for c in others])


def validation_candidates(chunks: list[Chunk], val: list[TrainPair], size: int, seed: int) -> list[Chunk]:
    """The chunks validation ranks among: every gold chunk of `val` plus a seeded sample of the rest, `size` in
    all (0, or a corpus no larger: all chunks, in index order).

    >>> chunks = [Chunk(chunk_id=str(i), doc_id=str(i), text="t") for i in range(10)]
    >>> [c.chunk_id for c in validation_candidates(chunks, [TrainPair("q", "7", "7")], 3, 0)][:1]
    ['7']
    >>> len(validation_candidates(chunks, [], 0, 0))
    10
    """
    if not size or len(chunks) <= size:
        return list(chunks)
    gold = {p.chunk_id for p in val}
    kept = [c for c in chunks if c.chunk_id in gold]
    others = [c for c in chunks if c.chunk_id not in gold]
    return kept + random.Random(seed).sample(others, max(0, min(len(others), size - len(kept))))


def _texts(chunks: list[Chunk]) -> list[str]:
    from ragtune.index.embed import chunk_embed_text

    return [chunk_embed_text(c.title, c.text) for c in chunks]


def folder_hash(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def check_tunable(index: Any, base: str | None = None, chunks: int | None = None) -> str:
    """The embedder to start from (`base`, else the index's); InputError/ConfigError when the index has too few
    chunks or that embedder has no weights. Cheap: `compare --train` checks it before any work."""
    chunks = len(index) if chunks is None else chunks
    if chunks < MIN_CHUNKS:
        raise InputError(f"index {index_location(index)} has {chunks} chunks; embedder tuning needs at least {MIN_CHUNKS}")
    base_name = base or index.config.embed.model
    if base_name.startswith("hash"):
        raise ConfigError(f"the index embedder {base_name!r} has no weights to tune; pass --base EMB_DIR or 'bundled'")
    return str(base_name)


def _bm25_over(index: Any, chunks: list[Chunk]) -> Any:
    """A BM25 index whose rows are `chunks`: a folder index's own (its rows are its chunks), else built here (a
    store index searches BM25 in its engine, which knows no row numbers)."""
    state = index.state
    if hasattr(state, "bm25"):
        return state.bm25(index.config)
    from ragtune.index.bm25 import BM25Index
    from ragtune.index.embed import chunk_embed_text

    return BM25Index([chunk_embed_text(c.title, c.text) for c in chunks], index.config.bm25)


def _stored_dim(index: Any) -> int:
    """The dimension of the vectors an index holds (0: none yet)."""
    if getattr(index, "is_store", False):
        stored = index.store.read_config()
        return int(stored.dim) if stored is not None else 0
    return int(index.state.manifest.dim)


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest finetune-embedder wrote into `folder` ({} for a folder it did not write)."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    import torch

    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load_checkpoint(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint at `path` (None when there is none); ConfigError when it is of other data or settings."""
    import torch

    if not path.is_file():
        logger.info("no checkpoint at %s: training from the start", path)
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    changed = [name for name, value in key.items() if state.get(name) != value]
    if changed:
        raise ConfigError(f"--resume: the checkpoint {path} was written with other {' and '.join(changed)} "
                          "(the queries, settings or base embedder changed): drop --resume to start over")
    return state


def tune_embedder(
    index: Any, out: str | os.PathLike, config: EmbedderTuneConfig = EmbedderTuneConfig(),
    qa_file: str | os.PathLike | None = None, base: str | None = None, resume: bool = False,
) -> TuneResult:
    """Train a copy of the index's embedder (or `base`) on pairs from the index; write it to `out` atomically.

    After every epoch that goes on to another, the state is checkpointed (atomically) to `.OUT.checkpoint.pt`
    beside `out`; `resume` continues from it when it was written for the same data, settings and base embedder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import CachedMultipleNegativesRankingLoss, MultipleNegativesRankingLoss

    from ragtune.models import resolve_embedder

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not empty; choose a new folder for the tuned embedder")
    if config.epochs < 1 or config.per_chunk < 0 or config.sentence_queries < 0 or config.batch_size < 2 \
            or config.per_chunk + config.sentence_queries < 1 or config.mini_batch_size < 0:
        raise ConfigError("epochs >= 1, per_chunk and sentence_queries >= 0 (not both 0), batch_size >= 2 and "
                          f"mini_batch_size >= 0 are needed, got {config}")
    chunks = index.chunks()
    base_name = check_tunable(index, base, len(chunks))
    base_dir = resolve_embedder(base_name)
    started = time.perf_counter()
    pairs = pairs_from_qa_file(qa_file, {c.chunk_id: c for c in chunks}) if qa_file else synth_pairs(chunks, config)
    if len({c.doc_id for c in chunks}) < 2:
        raise InputError(f"index {index_location(index)} has one document; tuning needs several (negatives, validation split)")
    pairs = mine_negatives(pairs, chunks, _bm25_over(index, chunks))
    train, val = split_by_document(pairs, config.val_fraction, config.seed)
    if len(train) < config.batch_size:
        raise InputError(f"only {len(train)} training queries from index {index_location(index)}; need at least {config.batch_size}")

    torch.manual_seed(config.seed)
    model = SentenceTransformer(str(base_dir), device="cpu")
    dim = int((getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)())
    index_dim = _stored_dim(index)
    if index_dim and dim != index_dim:
        raise InputError(f"embedder {base_name} has {dim} dimensions, index {index_location(index)} has {index_dim}")
    model.max_seq_length = min(model.max_seq_length or config.max_seq_length, config.max_seq_length)
    texts = _texts(chunks)
    text_of = {c.chunk_id: t for c, t in zip(chunks, texts)}
    if 0 < config.mini_batch_size < config.batch_size:
        loss_fn = CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch_size)
    else:
        loss_fn = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)

    val_queries, val_gold, candidate_texts = validation_set(chunks, val, text_of, config.val_candidates, config.seed)

    def validate() -> float:
        model.eval()
        with torch.no_grad():
            vectors = model.encode(candidate_texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
            return recall_at_k(model, val_queries, val_gold, vectors)

    preprocess = getattr(model, "preprocess", None) or model.tokenize  # `tokenize` is deprecated in ST >= 6
    data_hash = hashlib.sha256("\n".join(f"{p.query}\t{p.chunk_id}\t{p.negative_id}"
                                         + (f"\t{p.positive_text}" if p.positive_text else "")
                                         for p in pairs).encode()).hexdigest()[:16]
    checkpoint = out.parent / f".{out.name}.checkpoint.pt"
    key = {"data_hash": data_hash, "config": asdict(config), "base": str(base_name)}
    rng = random.Random(config.seed)
    resumed = _load_checkpoint(checkpoint, key) if resume else None
    if resumed is None:
        history, epochs_run, spent = [validate()], 0, 0.0
    else:  # training goes on only after an epoch that raised validation recall: its weights are the best so far
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        rng.setstate(resumed["rng"])
        torch.set_rng_state(resumed["torch_rng"])
        history, epochs_run, spent = list(resumed["history"]), int(resumed["epochs_run"]), float(resumed["seconds"])
        logger.info("resuming embedder tuning after epoch %d of %d", epochs_run, config.epochs)
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    best = history[-1]
    for _epoch in range(epochs_run, config.epochs):
        order = list(train)
        rng.shuffle(order)
        model.train()
        batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        with progress_task("Tuning the embedder", total=len(batches)) as task:
            for batch in batches:
                columns = [[p.query for p in batch], [p.positive_text or text_of[p.chunk_id] for p in batch],
                           [text_of[p.negative_id] for p in batch]]
                features = [preprocess(col) for col in columns]
                loss = loss_fn(features, torch.zeros(len(batch)))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                task.advance(1)
        epochs_run += 1
        history.append(validate())
        if not history[-1] > best:  # validation recall stopped rising: keep the best weights, stop
            break
        best = history[-1]
        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if epochs_run < config.epochs:
            _save_checkpoint(checkpoint, {**key, "model": best_state, "optimizer": optimizer.state_dict(),
                                          "rng": rng.getstate(), "torch_rng": torch.get_rng_state(),
                                          "history": history, "epochs_run": epochs_run,
                                          "seconds": spent + time.perf_counter() - started})
    model.load_state_dict(best_state)

    seconds = spent + time.perf_counter() - started
    manifest = {
        "base_embedder": str(base_name), "base_hash": folder_hash(base_dir), "data_hash": data_hash,
        "source_index": index_location(index), "config": asdict(config), "qa_file": str(qa_file or ""),
        "pairs": {"train": len(train), "validation": len(val)},
        "validation": {"recall@10_before": history[0], "recall@10_after": best, "per_epoch": history,
                       "queries": len(val_queries), "candidates": len(candidate_texts)},
        "epochs_run": epochs_run, "seconds": round(seconds, 1), "dim": dim,
    }
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tuning"
    try:
        model.save(str(tmp))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out.is_dir():
            out.rmdir()
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    checkpoint.unlink(missing_ok=True)
    return TuneResult(out, len(train), len(val), history[0], best, epochs_run, seconds, history)
