"""LoRA fine-tuning: length-grouped dynamic batches, answer-only loss, grad accumulation, checkpoints, resume.

Why not `transformers.Trainer`: we tokenise once, batch by length so almost no compute goes to padding, and
compute the LM head only at answer positions (the 49k-word head is a fifth of a 135M model's forward pass and
most of its activation memory). bench/bench_train.py measures the difference.

Layout while training: OUT.partial/checkpoints/step-N (resumable); the adapter is written to OUT.partial/adapter
and renamed to OUT only when training completes.

Several processes (nproc=N here, or torchrun setting WORLD_SIZE): DistributedDataParallel over the LoRA model.
Each optimizer step takes batch_size x N examples (the global batch of one process at N x batch_size), each rank
trains on its share, and the loss is normalised by the step's answer tokens over all ranks, so N processes
follow the same trajectory as one. Only rank 0 writes checkpoints, the adapter and progress.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import resource
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError, InputError
from ragtune.progress import progress_task
from ragtune.train.adapter import AdapterInfo, build_manifest, place_dir, resolve_base_model, write_adapter
from ragtune.train.builders import TrainExample
from ragtune.train.checkpoint import TrainingState, latest_checkpoint, load_checkpoint, save_checkpoint
from ragtune.train.collate import (IGNORE_INDEX, collate, length_grouped_batches, random_batches, split_by_tokens,
                                   tokenize_examples)
from ragtune.train.config import FinetuneConfig
from ragtune.train.data import examples_hash
from ragtune.train.distributed import (Ranks, all_gather_floats, barrier, env_ranks, init_group, launch,
                                       quiet_unless_main)
from ragtune.train.lora_model import (answer_loss_sum, bf16_autocast, load_lora_model, return_freed_memory,
                                      set_checkpointing, training_device, training_threads)

logger = logging.getLogger(__name__)

__all__ = ["FinetuneConfig", "finetune", "plan_steps"]


def plan_steps(lengths: Sequence[int], config: FinetuneConfig) -> list[list[list[int]]]:
    """The whole run's data order: steps -> micro-batches -> example indices (deterministic from the seed).

    A step holds grad_accum batches of batch_size examples; each batch is cut into micro-batches of at most
    config.micro_batch_tokens padded tokens, so memory follows the token budget, not the example count.
    """
    return [rank_micro_batches(step, lengths, config, Ranks()) for step in plan_batches(lengths, config)]


def plan_batches(lengths: Sequence[int], config: FinetuneConfig, world_size: int = 1) -> list[list[list[int]]]:
    """Steps -> global batches (batch_size x world_size examples each) -> example indices."""
    steps: list[list[list[int]]] = []
    size = config.batch_size * world_size
    for epoch in range(config.epochs):
        seed = config.seed * 1_000_003 + epoch
        if config.group_by_length:
            batches = length_grouped_batches(lengths, size, seed)
        else:
            batches = random_batches(len(lengths), size, seed)
        for i in range(0, len(batches), config.grad_accum):
            steps.append(batches[i : i + config.grad_accum])
    return steps[: config.max_steps] if config.max_steps else steps


def rank_share(batch: Sequence[int], ranks: Ranks) -> list[int]:
    """This rank's contiguous, near-equal slice of a global batch (length-grouped neighbours stay together)."""
    size, extra = divmod(len(batch), ranks.world_size)
    start = ranks.rank * size + min(ranks.rank, extra)
    return list(batch[start : start + size + (1 if ranks.rank < extra else 0)])


def rank_micro_batches(step: Sequence[Sequence[int]], lengths: Sequence[int], config: FinetuneConfig,
                       ranks: Ranks) -> list[list[int]]:
    """This rank's micro-batches of one step (its share of each batch, cut to the token budget)."""
    return [mb for batch in step for mb in split_by_tokens(rank_share(batch, ranks), lengths,
                                                           config.micro_batch_tokens)]


def finetune(
    train: Sequence[TrainExample],
    out_dir: str | Path,
    config: FinetuneConfig = FinetuneConfig(),
    *,
    resume: bool = False,
    overwrite: bool = False,
    on_step: Callable[[int, float], None] | None = None,
    nproc: int = 1,
) -> AdapterInfo:
    """Train a LoRA adapter on chat examples and write it atomically to out_dir.

    resume=True continues from the newest checkpoint in OUT.partial (same data and config); otherwise a stale
    OUT.partial is discarded. on_step(step, loss) is called after each optimizer step (logging, tests).
    nproc > 1 trains in that many local processes (DDP; global batch = batch_size x nproc), see distributed.py.

    >>> info = finetune(build_sft_examples(examples), "adapters/ft", FinetuneConfig(epochs=10))  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    if not train:
        raise InputError("no training examples")
    if out_dir.exists() and not overwrite:
        raise ConfigError(f"output folder already exists: {str(out_dir)!r} (choose another or pass --overwrite)")
    base_dir = resolve_base_model(config.base_model)
    device = training_device(config)
    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, not {nproc}")
    if nproc > 1:
        return _launch(train, out_dir, config, nproc, device, resume=resume, overwrite=overwrite,
                       on_step=on_step)
    ranks = env_ranks()
    quiet_unless_main(ranks)
    created = init_group(ranks, device)
    partial = out_dir.with_name(out_dir.name + ".partial")
    try:
        if ranks.is_main:
            try:
                if partial.exists() and not resume:
                    logger.info("discarding unfinished run in %s (no --resume)", partial)
                    shutil.rmtree(partial)
                (partial / "checkpoints").mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"cannot write to {str(partial.parent)!r}: {exc.strerror or exc}") from exc
        barrier(ranks)
        try:
            return _train(train, out_dir, partial, base_dir, device, config, resume=resume, overwrite=overwrite,
                          on_step=on_step, ranks=ranks)
        except BaseException:
            if ranks.is_main and latest_checkpoint(partial / "checkpoints") is None:  # nothing resumable
                shutil.rmtree(partial, ignore_errors=True)
            raise
    finally:
        if created:
            import torch.distributed as dist

            dist.destroy_process_group()


def _launch(train: Sequence[TrainExample], out_dir: Path, config: FinetuneConfig, nproc: int, device: str, *,
            resume: bool, overwrite: bool, on_step: Callable[[int, float], None] | None) -> AdapterInfo:
    """Train in nproc local processes (each runs finetune under WORLD_SIZE=nproc); rank 0's adapter is the result."""
    import torch

    from ragtune.train.adapter import read_manifest

    if device == "cuda" and nproc > torch.cuda.device_count():
        raise ConfigError(f"--nproc {nproc} needs {nproc} GPUs (one per process); "
                          f"{torch.cuda.device_count()} visible")
    try:  # on_step, if any, runs in every rank: it must pickle (a module-level function or object)
        launch(nproc, finetune, (list(train), out_dir, config),
               {"resume": resume, "overwrite": overwrite, "on_step": on_step})
    except BaseException:
        partial = out_dir.with_name(out_dir.name + ".partial")
        if latest_checkpoint(partial / "checkpoints") is None:  # a rank ended before its own cleanup ran
            shutil.rmtree(partial, ignore_errors=True)
        raise
    manifest = read_manifest(out_dir)
    return AdapterInfo(path=out_dir, base_model=config.base_model, base_model_sha256=manifest["base_model"]["sha256"],
                       metrics=manifest["metrics"], manifest=manifest)


def _train(train: Sequence[TrainExample], out_dir: Path, partial: Path, base_dir: Path, device: str,
           config: FinetuneConfig, *, resume: bool, overwrite: bool,
           on_step: Callable[[int, float], None] | None, ranks: Ranks | None = None) -> AdapterInfo:
    import torch

    ranks = ranks or Ranks()

    return_freed_memory()
    model, tokenizer = load_lora_model(base_dir, config, device)
    tokenized = tokenize_examples(train, tokenizer, config.max_len)
    if not tokenized.items:
        raise InputError(f"no trainable examples: all {len(train)} were skipped ({tokenized.skipped[0]})")
    items = tokenized.items
    lengths = [len(x) for x in items]
    steps = plan_batches(lengths, config, ranks.world_size)
    data_sha = examples_hash(train)
    # What decides the numbers (not thread count or checkpoint cadence): a checkpoint only resumes the same run.
    run_settings = config.model_dump_json(exclude={"num_threads", "checkpoint_every", "keep_checkpoints"})
    if ranks.distributed:  # N ranks x batch b follow one process at batch N x b, not one at batch b
        run_settings += f"|world={ranks.world_size}"
    fingerprint = hashlib.sha256(f"{run_settings}|{data_sha}|{base_dir}".encode()).hexdigest()

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config, len(steps)))
    torch.manual_seed(config.seed + ranks.rank)  # LoRA dropout: other masks on each rank
    history: dict[str, Any] = {"losses": [], "tokens": 0, "answer_tokens": 0, "seconds": 0.0}
    start = 0
    checkpoint = latest_checkpoint(partial / "checkpoints") if resume else None
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, model, optimizer, scheduler, fingerprint)
        start, history = state.step, state.history
        logger.info("resuming from %s (step %d of %d)", checkpoint, start, len(steps))

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    use_bf16 = bf16_autocast(config, device)
    # Auto checkpointing: only micro-batches the token budget could not bound (one long example) pay for it.
    checkpoint_above = (config.micro_batch_tokens or None) if config.gradient_checkpointing is None else None
    if config.gradient_checkpointing is None and checkpoint_above is None:
        set_checkpointing(model, config.checkpoint_layers)
    model.train()
    ddp = _wrap_ddp(model, ranks, device) if ranks.distributed else None
    threads_before = torch.get_num_threads()
    torch.set_num_threads(training_threads(config, max(1, threads_before // _local_world(ranks))))
    try:
        with progress_task("Fine-tuning", total=len(steps)) if ranks.is_main else _no_progress() as task:
            task.advance(start)
            for step in range(start, len(steps)):
                began = time.perf_counter()
                mine = rank_micro_batches(steps[step], lengths, config, ranks)
                scale = 1.0
                if not mine:  # fewer examples than ranks in this step: a zero-weight pass keeps DDP in step
                    mine, scale = [[steps[step][0][0]]], 0.0
                n_answer = sum(_n_answer(items[i]) for batch in steps[step] for i in batch)
                counts: dict[str, Any] = {"tokens": 0, "answer_tokens": 0, "padded_tokens": 0}
                loss = _train_step(model, [[items[i] for i in mb] for mb in mine], pad_id, device, use_bf16,
                                   counts, checkpoint_above=checkpoint_above,
                                   checkpoint_layers=config.checkpoint_layers, ddp=ddp, n_answer=n_answer,
                                   scale=scale * ranks.world_size)
                loss, counts["tokens"], counts["padded_tokens"] = _sum_over_ranks(
                    ranks, [loss * scale, counts["tokens"] * scale, counts["padded_tokens"] * scale])
                history["tokens"] += int(counts["tokens"])
                history["padded_tokens"] = history.get("padded_tokens", 0) + int(counts["padded_tokens"])
                history["answer_tokens"] += n_answer
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                history["seconds"] += time.perf_counter() - began
                history["losses"].append(loss)
                task.advance()
                task.update(info=f"loss {loss:.3f}")
                done = step + 1
                if (ranks.is_main and config.checkpoint_every and done % config.checkpoint_every == 0
                        and done < len(steps)):
                    save_checkpoint(partial / "checkpoints", model, optimizer, scheduler,
                                    TrainingState(done, fingerprint, history), config.keep_checkpoints)
                if on_step is not None:
                    on_step(done, loss)
    except (torch.OutOfMemoryError, MemoryError) as exc:
        raise ConfigError(_oom_message(config)) from exc
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower() or "can't allocate memory" in str(exc).lower():
            raise ConfigError(_oom_message(config)) from exc
        raise
    finally:
        torch.set_num_threads(threads_before)

    metrics = _metrics(history, steps, len(items), len(tokenized.skipped), config)
    if ranks.distributed:
        metrics.update(_rank_metrics(model, ranks, params))
    kinds: dict[str, int] = {}
    for example in train:
        kinds[str(example.meta.get("kind", "?"))] = kinds.get(str(example.meta.get("kind", "?")), 0) + 1
    manifest = build_manifest(
        base_name=config.base_model, base_dir=base_dir,
        lora={"r": config.lora_r, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
              "target_modules": config.target_modules},
        training=json.loads(config.model_dump_json()),
        data={"sha256": data_sha, "examples": len(train), "trained": len(items), "kinds": kinds,
              "skipped": tokenized.skipped[:50]},
        metrics=metrics,
    )
    info = AdapterInfo(path=out_dir, base_model=config.base_model, base_model_sha256=manifest["base_model"]["sha256"],
                       metrics=metrics, manifest=manifest)
    if not ranks.is_main:
        barrier(ranks)  # rank 0 writes the adapter
        return info
    staging = partial / "adapter"
    try:
        shutil.rmtree(staging, ignore_errors=True)
        write_adapter(model, staging, manifest)
        place_dir(staging, out_dir, overwrite=overwrite)
        shutil.rmtree(partial, ignore_errors=True)
    except OSError as exc:
        raise InputError(f"cannot write adapter to {str(out_dir)!r}: {exc.strerror or exc}") from exc
    barrier(ranks)
    logger.info("adapter written to %s (%s)", out_dir, metrics)
    return info


def _n_answer(item: Any) -> int:
    return sum(1 for t in item.labels[1:] if t != IGNORE_INDEX)


def _train_step(model: Any, micro_batches: list[list[Any]], pad_id: int, device: str, bf16: bool,
                history: dict[str, Any], *, checkpoint_above: int | None = None, checkpoint_layers: float = 0.0,
                ddp: Any = None, n_answer: int | None = None, scale: float = 1.0) -> float:
    """Forward/backward over the micro-batches of one optimizer step; the loss is the mean over all answer
    tokens of the step (not a mean of micro-batch means, which would over-weight short batches).
    checkpoint_above: checkpoint exactly the micro-batches of more padded tokens, and checkpoint_layers' share of
    the layers in the others (None: leave the model as set).
    Under DDP (ddp: the wrapped loss module) n_answer is the step's answer tokens over all ranks, scale the world
    size (DDP averages the ranks' gradients), and gradients are all-reduced once, after the last micro-batch."""
    import contextlib

    import torch

    local_answer = sum(_n_answer(x) for mb in micro_batches for x in mb)
    n_answer = local_answer if n_answer is None else n_answer
    total = 0.0
    for k, mb in enumerate(micro_batches):
        batch = {key: v.to(device) for key, v in collate(mb, pad_id).items()}
        if checkpoint_above is not None:
            over = batch["input_ids"].numel() > checkpoint_above
            set_checkpointing(model, True if over else checkpoint_layers)
        last = k == len(micro_batches) - 1
        sync = ddp.no_sync() if ddp is not None and not last else contextlib.nullcontext()
        with sync:
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                loss_sum = ddp(batch) if ddp is not None else answer_loss_sum(model, batch)
            (loss_sum * (scale / max(n_answer, 1))).backward()
        total += float(loss_sum.detach())
        history["tokens"] += sum(len(x) for x in mb)
        history["padded_tokens"] = history.get("padded_tokens", 0) + batch["input_ids"].numel()
    history["answer_tokens"] += local_answer
    return total / max(n_answer, 1)


def _wrap_ddp(model: Any, ranks: Ranks, device: str) -> Any:
    """DistributedDataParallel over a module whose forward is answer_loss_sum (DDP must see the forward)."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    class _AnswerLoss(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, batch: dict[str, Any]) -> Any:
            return answer_loss_sum(self.inner, batch)

    # Every rank builds the same weights from the same files and seed: no initial broadcast of the base model.
    return DistributedDataParallel(_AnswerLoss(model), device_ids=[ranks.local_rank] if device == "cuda" else None,
                                   init_sync=False)


def _sum_over_ranks(ranks: Ranks, values: list[float]) -> list[float]:
    gathered = all_gather_floats(ranks, values)
    return [sum(column) for column in zip(*gathered)]


def _rank_metrics(model: Any, ranks: Ranks, params: list[Any]) -> dict[str, Any]:
    """World size, each rank's peak RSS, and the largest difference of any LoRA weight from rank 0's (0.0: the
    ranks stayed in lockstep)."""
    import torch
    import torch.distributed as dist

    diff = 0.0
    with torch.no_grad():
        for p in params:
            reference = p.detach().clone()
            dist.broadcast(reference, 0)
            diff = max(diff, float((p.detach() - reference).abs().max()))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gathered = all_gather_floats(ranks, [rss, diff])
    return {"world_size": ranks.world_size, "peak_rss_mb_ranks": [round(g[0], 1) for g in gathered],
            "rank_weight_max_diff": max(g[1] for g in gathered)}


def _local_world(ranks: Ranks) -> int:
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def _no_progress() -> Any:
    import contextlib

    from ragtune.progress import _NullTask

    return contextlib.nullcontext(_NullTask())


def _schedule(config: FinetuneConfig, total: int) -> Callable[[int], float]:
    warmup = int(config.warmup_ratio * total)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if config.scheduler == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if config.scheduler == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        return max(0.0, 1.0 - progress)

    return factor


def _oom_message(config: FinetuneConfig) -> str:
    return (f"out of memory at batch_size={config.batch_size}, max_len={config.max_len}: lower --batch-size "
            "(raise --grad-accum to keep the effective batch) or --max-len; the run can continue with --resume")


def _metrics(history: dict[str, Any], steps: list[Any], n_items: int, n_skipped: int,
             config: FinetuneConfig) -> dict[str, Any]:
    losses = history["losses"]
    per_epoch = max(1, math.ceil(len(steps) / max(1, config.epochs))) if not config.max_steps else len(steps)
    seconds = history["seconds"]
    return {
        "steps": len(steps),
        "epochs": config.epochs,
        "examples": n_items,
        "skipped": n_skipped,
        "loss_first_epoch": sum(losses[:per_epoch]) / max(1, len(losses[:per_epoch])),
        "loss_last_epoch": sum(losses[-per_epoch:]) / max(1, len(losses[-per_epoch:])),
        "tokens": history["tokens"],
        "pad_fraction": round(1 - history["tokens"] / history["padded_tokens"], 4) if history.get("padded_tokens") else 0.0,
        "answer_tokens": history["answer_tokens"],
        "train_seconds": round(seconds, 3),
        "tokens_per_s": round(history["tokens"] / seconds, 1) if seconds else 0.0,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }

