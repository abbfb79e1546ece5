"""The model side of LoRA training: loading the base model with LoRA (and QLoRA on CUDA), the answer-only
loss, gradient checkpointing, the device and thread choice, and giving freed activation memory back to the OS.
The loop that drives them is ragtune.train.trainer."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError, MissingExtraError
from ragtune.train.collate import IGNORE_INDEX
from ragtune.train.config import FinetuneConfig

logger = logging.getLogger(__name__)


def answer_loss_sum(model: Any, batch: dict[str, Any]) -> Any:
    """Summed next-token cross-entropy over the answer positions only.

    The LM head runs on the (n_answer, dim) answer hidden states instead of all (batch, seq, dim) positions,
    unless the model post-processes its logits (soft-capping, scaling), where the full forward is used.
    """
    import torch.nn.functional as F

    labels = batch["labels"]
    targets = labels[:, 1:]  # position t predicts token t+1
    mask = targets != IGNORE_INDEX
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = getattr(base, getattr(base, "base_model_prefix", ""), None)
    head = base.get_output_embeddings()
    special = any(getattr(base.config, k, None) for k in ("final_logit_softcapping", "logit_scale", "logits_scaling"))
    if decoder is None or head is None or special or decoder is base:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
        logits = logits[:, :-1]
        return F.cross_entropy(logits[mask].float(), targets[mask], reduction="sum")
    # no KV cache: training never reads it (and checkpointed layers warn that they cannot fill one)
    hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
    hidden = hidden.last_hidden_state
    logits = head(hidden[:, :-1][mask])  # (n_answer, vocab)
    return F.cross_entropy(logits.float(), targets[mask], reduction="sum")


def bf16_autocast(config: FinetuneConfig, device: str) -> bool:
    """bf16 autocast: as configured, else on CUDA. (On CPUs with AVX512-BF16 it is opt-in, `bf16=True`.)"""
    return config.bf16 if config.bf16 is not None else device == "cuda"


def training_device(config: FinetuneConfig) -> str:
    import torch

    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but CUDA is not available")
    if config.qlora and not torch.cuda.is_available():
        raise ConfigError("--qlora needs a CUDA GPU (4-bit bitsandbytes kernels); train in full precision on CPU")
    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return config.device


def load_lora_model(base_dir: Path, config: FinetuneConfig, device: str) -> tuple[Any, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if config.qlora:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as exc:
            raise MissingExtraError("bitsandbytes", "gpu") from exc
        from transformers import BitsAndBytesConfig

        kwargs = {"dtype": torch.bfloat16, "device_map": {"": 0}, "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True)}
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base_dir), **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load base model from {str(base_dir)!r}: {exc}") from exc
    if config.qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model = model.to(device)
    if config.gradient_checkpointing is not False:
        enable_checkpointing(model)
    torch.manual_seed(config.seed)  # LoRA's A matrices are initialised randomly: same seed, same adapter
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.target_modules, task_type="CAUSAL_LM")
    from ragtune.generate.hf import peft_quietly

    try:
        with peft_quietly():
            model = get_peft_model(model, lora)
    except ValueError as exc:
        raise ConfigError(f"LoRA target_modules {config.target_modules!r} do not fit {base_dir}: {exc}") from exc
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("LoRA r=%d on %s: %d trainable parameters", config.lora_r, config.target_modules, trainable)
    return model, tokenizer


def enable_checkpointing(model: Any) -> None:
    """Keep only each decoder layer's input for the backward pass and recompute the layer there.

    Non-reentrant, so LoRA gets gradients without marking the frozen embeddings' output as requiring grad.
    Measured on the bundled model (RAFT prompts of ~670 tokens, batch 2 in one pass): peak RSS 4.6 GB -> 1.3 GB,
    at about a third more compute (the forward runs twice)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x; the old name warns
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def set_checkpointing(model: Any, enabled: bool | float) -> None:
    """Switch checkpointing of the layers prepared by enable_checkpointing on or off (per micro-batch); a
    fraction checkpoints that share of the layers, spread evenly (0.5: every other layer), for half the
    activation memory at half the recompute."""
    layers = [module for module in model.modules() if hasattr(module, "_gradient_checkpointing_func")]
    share = float(enabled)
    chosen = round(share * len(layers))
    for i, module in enumerate(layers):  # layer i is chosen when the running count of chosen layers steps up
        module.gradient_checkpointing = (i + 1) * chosen // len(layers) > i * chosen // len(layers)


MMAP_THRESHOLD_BYTES = 2 * 1024 * 1024  # see return_freed_memory


def return_freed_memory() -> None:
    """Make glibc give large freed blocks back to the OS instead of keeping them in its heap.

    By default glibc raises its mmap threshold (up to 32 MB) each time a large block is freed, after which the
    activations of a training step (1-30 MB tensors) come from the heap, and the heap keeps the fragmented
    peak: measured on a 672-token LoRA forward of the bundled model, 2.6 GB held vs 1.9 GB with the threshold
    pinned at glibc's initial 128 KB (with gradient checkpointing 1.2 GB vs 0.6 GB). But a low threshold makes
    every mid-sized tensor a fresh mmap (page faults: a third of the step time at 128 KB). Measured on an idle
    2-core machine, batch 8, bundled model: RAFT-like 8 x 670 tokens 147 / 173 / 221 / 224 tokens/s at
    128 KB / 1 MB / 2 MB / 4 MB, peak RSS 2.53 / 2.68 / 3.25 / 3.29 GB; SQuAD prompts (bench_train, 32 examples)
    156 / 182 / 235 / 244 tokens/s (the code before the token budget: 205 tokens/s at 12.7 GB). 2 MB keeps the
    speed and ~85% of the memory saving. No-op off glibc."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(ctypes.c_int(-3), ctypes.c_int(MMAP_THRESHOLD_BYTES))  # M_MMAP_THRESHOLD: also stops the raising
    except (OSError, AttributeError):
        pass


def training_threads(config: FinetuneConfig, default: int) -> int:
    """config.num_threads, else torch's default, except on an oversubscribed machine (load average above the
    core count): one thread, because OpenMP threads that wait for descheduled peers cost more than they give
    (measured here under load ~10 on 2 cores: a LoRA step 4x faster on 1 thread than on 2)."""
    if config.num_threads:
        return config.num_threads
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return default
    return 1 if load > (os.cpu_count() or 1) + 1 else default
