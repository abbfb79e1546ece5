"""Turning QA examples into chat training examples: closed-book SFT, SFT with the gold passage, and RAFT.

Every prompt is built by `ragtune.generate.prompts.build_messages` and every RAFT target by
`format_raft_target`, exactly as at inference, so a tuned model meets the format it was trained on.

RAFT (Zhang et al. 2024): the question with the oracle chunk plus hard-negative distractor chunks (retrieved by
the hybrid retriever) in shuffled order; in a fraction 1-P of examples the oracle is replaced by one more
distractor, which teaches the model to answer from memory when retrieval misses. Targets are the short answer
citing its source, or (quote=True) the paper's quote-the-supporting-sentence-then-answer form.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ragtune.errors import ConfigError, InputError
from ragtune.generate.prompts import build_messages, format_raft_target
from ragtune.retrieve import open_retriever
from ragtune.text import normalize_answer, split_sentences
from ragtune.types import Chunk, Example, Hit

logger = logging.getLogger(__name__)

MAX_QUOTE_CHARS = 160  # ~35 tokens: the quote must leave room for the answer within max_new_tokens


@dataclass(frozen=True)
class TrainExample:
    """One chat training example: the model input (messages) and the assistant target it learns."""

    messages: list[dict[str, str]]
    target: str
    meta: dict[str, Any] = field(default_factory=dict)  # kind, qid, oracle, source_number, ...

    def to_chat(self) -> dict[str, Any]:
        """OpenAI chat format, the line `export_jsonl` writes: {"messages": [..., assistant], "meta": {...}}."""
        return {"messages": [*self.messages, {"role": "assistant", "content": self.target}], "meta": self.meta}

    @classmethod
    def from_chat(cls, record: dict[str, Any]) -> TrainExample:
        messages = list(record["messages"])
        if not messages or messages[-1].get("role") != "assistant":
            raise InputError(f"a chat training record must end with the assistant's answer: {record!r:.200}")
        return cls(messages=messages[:-1], target=messages[-1]["content"], meta=dict(record.get("meta", {})))


class ChunkSource(Protocol):
    """What the builders need of a `ragtune.index.Index` (RAFT distractors come from
    `ragtune.retrieve.open_retriever` over it)."""

    def chunks(self) -> list[Chunk]: ...

    def get_chunks(self, chunk_ids: Sequence[str]) -> list[Chunk]: ...


def build_sft_examples(
    examples: Sequence[Example],
    *,
    with_context: bool = False,
    index: ChunkSource | None = None,
    paraphrases: bool = True,
    context_sentences: int = 0,
) -> list[TrainExample]:
    """SFT examples: closed-book (question -> bare short answer), or with_context (gold passage as source [1]
    -> "answer [1]"), the variant that teaches the model to read its sources (the ft_rag arm).

    The gold passage is the example's `context`, else its chunk in `index` (by chunk_id, else the chunk of its
    doc_id that contains the answer). Examples whose passage cannot be found are skipped with a warning.
    With paraphrases=True, each `metadata["paraphrases"]` question becomes one more example (this helps
    knowledge injection, Ovadia et al. 2023). `context_sentences` > 0 cuts the passage to that many sentences
    closest to the question (default 0: whole passages, see build_raft_examples).
    """
    chunk_lookup = _ChunkLookup(index) if (with_context and index is not None) else None
    out: list[TrainExample] = []
    missing = 0
    for example in examples:
        questions = [example.question]
        if paraphrases:
            questions += [str(p) for p in example.metadata.get("paraphrases", []) or [] if str(p).strip()]
        meta = {"kind": "sft_context" if with_context else "sft", "qid": example.qid, "doc_id": example.doc_id}
        if not with_context:
            out += [TrainExample(build_messages(q, None), example.answer.strip(), meta) for q in questions]
            continue
        gold = _gold_chunk(example, chunk_lookup)
        if gold is None:
            missing += 1
            continue
        hits = [Hit(chunk=gold, score=1.0, rank=0)]
        target = f"{example.answer.strip()} [1]"
        shown = _cut(questions, [hits] * len(questions), context_sentences, index)
        out += [TrainExample(build_messages(q, h), target, {**meta, "chunk_id": gold.chunk_id})
                for q, h in zip(questions, shown, strict=True)]
    if missing:
        logger.warning("skipped %d of %d examples: no gold passage (no context, chunk_id or doc_id in the index)",
                       missing, len(examples))
    if not out:
        raise InputError("no SFT examples could be built (with context: the examples need a context or an index)")
    return out


def build_raft_examples(
    examples: Sequence[Example],
    index: ChunkSource,
    *,
    distractors: int = 3,
    p_oracle: float = 0.8,
    seed: int = 0,
    retrieve_mode: str = "hybrid",
    retrieve_options: Mapping[str, Any] | None = None,
    quote: bool = False,
    context_sentences: int = 0,
) -> list[TrainExample]:
    """RAFT examples from an index: oracle chunk + `distractors` hard negatives, shuffled; the oracle is kept in
    round(p_oracle * n) examples (chosen with `seed`) and replaced by one more distractor in the others.
    Distractors are retrieved with `retrieve_mode` and `retrieve_options` (RetrieveConfig fields, e.g. a +rerank
    mode's rerank_depth), as the arm that answers with the adapter retrieves.

    Targets are 'Quote: [n] "sentence"\\nAnswer: X [n]' with the oracle, 'Answer: X' without (with quote=False:
    the direct 'X [n]', or 'X' without the oracle). Distractors are
    the top hybrid hits for the question that are not the oracle and do not contain the answer; random chunks
    fill in when retrieval returns too few. Examples whose oracle chunk is not in the index are skipped.
    `context_sentences` > 0 cuts the passages to that many sentences closest to the question, as inference does
    for local models (GenerateConfig.context_sentences); an example whose cut oracle no longer holds the answer
    is then trained as one without the oracle. The default is whole passages: trained on them, a RAFT adapter
    read cut passages better than one trained on cut passages (SQuAD F1 0.340 vs 0.288 on 120 questions, same
    253 synthesised questions; training on cut passages takes half the time and memory; again 0.392 vs 0.335 on
    other articles with the issue-18 defaults, bench/bench_raft_mix.py).
    """
    if not 0.0 <= p_oracle <= 1.0:
        raise InputError(f"p_oracle must be in [0, 1], got {p_oracle}")
    if distractors < 0:
        raise InputError(f"distractors must be >= 0, got {distractors}")
    lookup = _ChunkLookup(index)
    pairs = [(e, _gold_chunk(e, lookup)) for e in examples]
    found = [(e, c) for e, c in pairs if c is not None]
    if len(found) < len(pairs):
        logger.warning("RAFT: skipped %d of %d examples whose gold chunk is not in the index",
                       len(pairs) - len(found), len(pairs))
    if not found:
        raise InputError("no RAFT examples: none of the examples' gold passages (chunk_id / doc_id) is in the index")
    rng = random.Random(seed)
    keep = set(rng.sample(range(len(found)), round(p_oracle * len(found))))
    retriever = open_retriever(index, retrieve_mode, **(retrieve_options or {}))
    retrieved = retriever.retrieve([e.question for e, _ in found], distractors + 8)
    all_chunks = lookup.all_chunks
    layouts = []
    for i, ((example, oracle), hits) in enumerate(zip(found, retrieved)):
        n_distract = distractors if i in keep else distractors + 1
        chosen = _pick_distractors(example, oracle, [h.chunk for h in hits], all_chunks, n_distract, rng)
        docs = [oracle, *chosen] if i in keep else chosen
        rng.shuffle(docs)
        layouts.append(docs)
    shown = _cut([e.question for e, _ in found], [[Hit(chunk=c, score=0.0, rank=r) for r, c in enumerate(docs)]
                                                  for docs in layouts], context_sentences, index)
    out: list[TrainExample] = []
    for i, ((example, oracle), docs, hits) in enumerate(zip(found, layouts, shown, strict=True)):
        shown_oracle = hits[docs.index(oracle)].chunk.text if i in keep else ""
        # Cutting may drop the answer's sentence; an answer the whole oracle does not contain verbatim (a
        # user's free-form answer) cannot be checked, and keeps the oracle.
        lost = context_sentences and _holds_answer(oracle.text, example.answer) and not _holds_answer(
            shown_oracle, example.answer)
        with_oracle = i in keep and not lost
        source_number = docs.index(oracle) + 1 if with_oracle else None
        if quote:
            target = format_raft_target(example.answer, _quote(shown_oracle, example) if with_oracle else None,
                                        source_number)
        else:  # the direct form: the short answer citing its source, as the sft-context target
            target = f"{example.answer.strip()} [{source_number}]" if with_oracle else example.answer.strip()
        messages = build_messages(example.question, hits)
        meta = {"kind": "raft", "qid": example.qid, "doc_id": example.doc_id, "oracle": with_oracle,
                "source_number": source_number, "oracle_chunk_id": oracle.chunk_id,
                "chunk_ids": [c.chunk_id for c in docs]}
        out.append(TrainExample(messages, target, meta))
    return out


def _cut(questions: Sequence[str], hits: Sequence[list[Hit]], keep: int, index: Any) -> list[list[Hit]]:
    """Passages cut to their `keep` sentences closest to each question (0: unchanged), embedding with the
    index's embedder when there is one."""
    if not keep:
        return [list(h) for h in hits]
    from ragtune.generate.compress import compress_hits

    return compress_hits(questions, hits, keep, getattr(index, "embedder", None))


def _holds_answer(text: str, answer: str) -> bool:

    return bool(normalize_answer(answer)) and normalize_answer(answer) in normalize_answer(text)


TRAINING_MODES = ("sft", "sft-context", "raft")


def build_training_set(
    examples: Sequence[Example],
    mode: str,
    index: ChunkSource | str | Path | None = None,
    *,
    distractors: int = 3,
    p_oracle: float = 0.8,
    seed: int = 0,
    quote: bool = False,
    context_sentences: int = 0,
    retrieve_mode: str = "hybrid",
    retrieve_options: Mapping[str, Any] | None = None,
) -> list[TrainExample]:
    """Dispatch by mode: 'sft' (closed-book), 'sft-context' (gold passage; index optional), 'raft' (index
    required; distractors retrieved with `retrieve_mode` and `retrieve_options`). `index` may be an opened Index or
    its folder."""
    mode = mode.replace("_", "-")
    if mode not in TRAINING_MODES:
        raise ConfigError(f"unknown training mode {mode!r}: use one of {', '.join(TRAINING_MODES)}")
    if mode == "raft" and index is None:
        raise ConfigError("--mode raft needs an index (--index DIR): distractors are retrieved from it")
    if isinstance(index, (str, Path)):
        from ragtune.index import Index

        index = Index.open(index)  # NotBuiltError when missing
    if mode == "raft":
        return build_raft_examples(examples, index, distractors=distractors, p_oracle=p_oracle, seed=seed,
                                   quote=quote, context_sentences=context_sentences, retrieve_mode=retrieve_mode,
                                   retrieve_options=retrieve_options)
    return build_sft_examples(examples, with_context=mode == "sft-context", index=index,
                              context_sentences=context_sentences)


def export_jsonl(train: Sequence[TrainExample], path: str | Path) -> Path:
    """Write training examples as chat JSONL (atomically), so they can be used to train elsewhere."""
    from ragtune.atomic import write_jsonl_atomic

    return write_jsonl_atomic((example.to_chat() for example in train), path)


def load_train_jsonl(path: str | Path) -> list[TrainExample]:
    """Read chat JSONL written by `export_jsonl` back into TrainExamples."""
    out = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append(TrainExample.from_chat(json.loads(line)))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InputError(f"{path}:{number}: not a chat training record ({exc})") from exc
    return out


class _ChunkLookup:
    """Chunks of an index by id and by doc_id, read once."""

    def __init__(self, index: ChunkSource):
        self.all_chunks = list(index.chunks())
        self.by_id = {c.chunk_id: c for c in self.all_chunks}
        self.by_doc: dict[str, list[Chunk]] = {}
        for chunk in self.all_chunks:
            self.by_doc.setdefault(chunk.doc_id, []).append(chunk)


def _contains(text: str, needle: str) -> bool:
    return bool(needle.strip()) and " ".join(needle.lower().split()) in " ".join(text.lower().split())


def _gold_chunk(example: Example, lookup: _ChunkLookup | None) -> Chunk | None:
    """The passage that supports the example: its chunk, else its doc's chunk holding the evidence/answer,
    else its `context` as an ad-hoc chunk."""
    if lookup is not None:
        if example.chunk_id and example.chunk_id in lookup.by_id:
            return lookup.by_id[example.chunk_id]
        candidates = lookup.by_doc.get(example.doc_id, [])
        evidence = str(example.metadata.get("evidence", ""))
        for needle in (evidence, example.context[:200], *example.gold_answers):
            for chunk in candidates:
                if _contains(chunk.text, needle):
                    return chunk
    if example.context:
        doc_id = example.doc_id or "context"
        return Chunk(chunk_id=f"{doc_id}#0", doc_id=doc_id, text=example.context,
                     title=str(example.metadata.get("article", "")).replace("_", " "))
    return None


def _pick_distractors(
    example: Example, oracle: Chunk, retrieved: list[Chunk], pool: list[Chunk], n: int, rng: random.Random
) -> list[Chunk]:
    def usable(chunk: Chunk) -> bool:
        return chunk.chunk_id != oracle.chunk_id and not any(_contains(chunk.text, a) for a in example.gold_answers)

    chosen: list[Chunk] = []
    seen = {oracle.chunk_id}
    for chunk in retrieved:
        if len(chosen) == n:
            break
        if chunk.chunk_id not in seen and usable(chunk):
            chosen.append(chunk)
            seen.add(chunk.chunk_id)
    tries = 0
    while len(chosen) < n and pool and tries < 20 * n:
        tries += 1
        chunk = pool[rng.randrange(len(pool))]
        if chunk.chunk_id not in seen and usable(chunk):
            chosen.append(chunk)
            seen.add(chunk.chunk_id)
    return chosen


def _quote(text: str, example: Example) -> str | None:
    """The sentence of the oracle that supports the answer (the evidence if given), at most MAX_QUOTE_CHARS."""
    evidence = str(example.metadata.get("evidence", "")).strip()
    if evidence and _contains(text, evidence) and len(evidence) <= MAX_QUOTE_CHARS:
        return evidence
    sentences = split_sentences(text)
    for answer in example.gold_answers:
        for sentence in sentences:
            if _contains(sentence, answer):
                return _clip_around(sentence, answer)
    return None


def _clip_around(sentence: str, answer: str) -> str:
    if len(sentence) <= MAX_QUOTE_CHARS:
        return sentence
    at = max(sentence.lower().find(answer.lower()), 0)
    start = max(0, min(at - MAX_QUOTE_CHARS // 2, len(sentence) - MAX_QUOTE_CHARS))
    clipped = sentence[start : start + MAX_QUOTE_CHARS]
    # Cut at word boundaries so the quote never starts or ends mid-word.
    if start > 0:
        clipped = clipped.split(" ", 1)[-1]
    if start + MAX_QUOTE_CHARS < len(sentence):
        clipped = clipped.rsplit(" ", 1)[0]
    return clipped.strip()
