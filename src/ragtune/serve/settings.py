"""Settings of `ragtune serve`: what to serve, who may call it, and the limits that protect it."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, model_validator

from ragtune.config import BUNDLED, GenerateConfig, RerankOptions, RetrieveMode

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'; False for anything else (0.0.0.0 included)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServeSettings(RerankOptions):
    """Everything `create_app` needs. Arms follow the compare harness: base, rag, ft, ft_rag, raft.

    API keys come from `api_keys_file` and/or the env var named by `api_keys_env` (see ragtune.serve.auth);
    with none configured the server is open but only allowed on a loopback host.
    """

    index: str | None = None  # index folder; required by arms that retrieve
    arms: tuple[str, ...] = ("rag",)
    model: str = BUNDLED
    adapter: str | None = None  # SFT adapter for ft / ft_rag
    raft_adapter: str | None = None  # RAFT adapter for raft (falls back to `adapter`)
    model_name: str | None = None  # http(s) model: the remote model of the untuned arms (else the URL #fragment)
    adapter_model_names: dict[str, str] = Field(default_factory=dict)  # http(s) model: "sft"/"raft" -> remote name
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)

    retrieve_mode: RetrieveMode = "hybrid"  # with rerank_depth / rerank_weight (RerankOptions) for a +rerank mode
    k: int = Field(3, ge=1, le=20)
    prompt_style: Literal["auto", "guided", "plain"] = "auto"  # GenerateConfig.prompt_style, as ask/compare
    context_sentences: int | None = Field(None, ge=0)  # GenerateConfig.context_sentences, as ask/compare
    answer_form: Literal["free", "snap", "span", "free-or-span"] = "free"  # GenerateConfig.answer_form, as ask/compare
    answer_pick: Literal["joint", "evidence"] = "joint"  # GenerateConfig.answer_pick, as ask/compare

    api_keys_file: str | None = None
    api_keys_env: str = "RAGTUNE_API_KEYS"

    screening: Literal["neutralise", "drop", "off"] = "neutralise"

    max_body_bytes: int = Field(1_000_000, ge=1024)  # JSON requests
    max_upload_bytes: int = Field(10_000_000, ge=1024)  # one uploaded file
    max_question_chars: int = Field(2000, ge=10)
    max_messages: int = Field(64, ge=1)
    max_tokens_limit: int = Field(256, ge=1, le=4096)  # cap on a request's max_tokens
    default_max_tokens: int = Field(64, ge=1, le=4096)
    rate_limit_per_minute: float = Field(120.0, gt=0)  # per API key (per client address when open)
    rate_limit_burst: int = Field(60, ge=1)
    request_timeout_s: float = Field(120.0, gt=0)
    # How long a document write waits for the index (another writer holds it) before 503 + Retry-After; capped
    # at half the request timeout, so a busy index answers promptly instead of holding the request open.
    write_timeout_s: float = Field(10.0, gt=0)

    queue_size: int = Field(64, ge=1)  # generation jobs waiting; beyond that: 429
    max_batch: int = Field(8, ge=1)  # dynamic batching: jobs answered in one generate call
    batch_wait_ms: float = Field(5.0, ge=0)  # how long the worker waits to fill a batch

    @property
    def index_write_timeout_s(self) -> float:
        """The wait for the index writer lock of one document write: write_timeout_s, below the request timeout."""
        return min(self.write_timeout_s, self.request_timeout_s / 2)

    def generate_config(self, arm: str) -> GenerateConfig:
        """The GenerateConfig of an arm's generator: the model, plus the arm's adapter (None when not given)."""
        from ragtune.arms import ARMS, endpoint_model_name

        kind = ARMS[arm].adapter
        adapter = None if kind is None else (self.raft_adapter or self.adapter if kind == "raft" else self.adapter)
        model_name = None
        if self.model.startswith(("http://", "https://")) and adapter is None:  # a tuned arm is a served model
            model_name = endpoint_model_name(arm, self.model_name, self.adapter_model_names)
        return GenerateConfig(model=self.model, adapter=adapter, model_name=model_name,
                              max_new_tokens=self.default_max_tokens,
                              batch_size=self.max_batch, stop_at_answer_line=True, prompt_style=self.prompt_style,
                              context_sentences=self.context_sentences, answer_form=self.answer_form,
                              answer_pick=self.answer_pick, screening=self.screening)

    @model_validator(mode="after")
    def _check(self) -> ServeSettings:
        from ragtune.errors import InputError
        from ragtune.arms import check_untuned_retriever, parse_arms
        from ragtune.errors import ConfigError

        try:
            parsed = tuple(parse_arms(list(self.arms)))
        except InputError as exc:
            raise ValueError(str(exc)) from None
        if parsed != self.arms:
            object.__setattr__(self, "arms", parsed)
        for arm in parsed:
            try:
                check_untuned_retriever(arm, "serve")
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        if (self.model_name or self.adapter_model_names) and not self.model.startswith(("http://", "https://")):
            raise ValueError(f"model_name / adapter_model_names name models on an http(s) endpoint; {self.model!r} is local")
        if set(self.adapter_model_names) - {"sft", "raft"}:
            raise ValueError(f"adapter_model_names keys are sft and raft, got {sorted(self.adapter_model_names)}")
        self.check_mode(self.retrieve_mode)
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError(
                f"default_max_tokens ({self.default_max_tokens}) exceeds max_tokens_limit ({self.max_tokens_limit})"
            )
        return self
