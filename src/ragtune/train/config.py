"""The fine-tuning configuration (saved in every adapter's manifest)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ragtune.config import BUNDLED, StrictModel


class FinetuneConfig(StrictModel):
    """LoRA fine-tuning settings. The defaults inject facts into the bundled 135M model on CPU: measured here,
    ~10 epochs at lr 1e-3 with r=16 on all linear layers learn ~90% of 100 short facts (3 epochs do not)."""

    base_model: str = BUNDLED  # 'bundled' or a local HF causal-LM folder
    epochs: int = Field(10, ge=1, le=1000)
    lr: float = Field(1e-3, gt=0, le=1.0)
    lora_r: int = Field(16, ge=1, le=1024)
    lora_alpha: int = Field(32, ge=1)
    # No dropout by default: its masks (a Bernoulli draw and a multiply per LoRA input) took ~25% of a CPU step
    # (190 -> 245 tokens/s without them, peak RSS 3.5 -> 2.9 GB); a RAFT adapter scored the same without them
    # (SQuAD F1 0.392 vs 0.382 with 0.05, trained in 595 vs 830 s; bench/bench_raft_mix.py rules4-nodrop / rules4).
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    # Padded tokens per forward/backward pass: a batch is cut into micro-batches under this budget and their
    # gradients accumulated (same step, less activation memory). 0 = the whole batch in one pass.
    micro_batch_tokens: int = Field(768, ge=0)
    # Keep each layer's input only and recompute the layer in the backward pass (~1/3 more compute, activations
    # ~15x smaller). None: only for a micro-batch still over micro_batch_tokens (one example longer than it).
    gradient_checkpointing: bool | None = None
    # With gradient_checkpointing None: the share of layers checkpointed in micro-batches within the budget too
    # (spread evenly), trading compute for memory. Measured on the demo's RAFT prompts (~600 tokens):
    # see ragtune.workflows.demo.DEMO_TRAINING.
    checkpoint_layers: float = Field(0.0, ge=0, le=1)
    max_len: int = Field(1024, ge=16)
    checkpoint_every: int = Field(50, ge=0)  # optimizer steps between checkpoints; 0 = none
    keep_checkpoints: int = Field(2, ge=1)
    seed: int = 0
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    max_steps: int | None = Field(None, ge=1)  # stop after this many optimizer steps (benchmarks, smoke runs)
    group_by_length: bool = True  # length-grouped batches: little padding
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool | None = None  # None: bf16 autocast when CUDA is used
    qlora: bool = False  # 4-bit base weights via bitsandbytes (CUDA only)
    num_threads: int | None = Field(None, ge=1)  # torch CPU threads while training (restored after); None = default
