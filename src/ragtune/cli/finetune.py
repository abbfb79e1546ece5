"""`ragtune finetune` (LoRA SFT / RAFT from QA, chat or SQuAD files) and `ragtune merge`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

# Fewer examples than one default batch teach an adapter nothing measurable; it is almost always a wrong or
# mostly malformed file, better refused in a second than "trained" for minutes. --min-examples 1 allows it.
MIN_EXAMPLES = 8


# FinetuneConfig fields -> the flags that set them, so a bad value's error names what the user typed
SETTING_FLAGS = {
    "base_model": "--base-model", "epochs": "--epochs", "lr": "--lr", "lora_r": "--lora-r", "batch_size": "--batch-size",
    "grad_accum": "--grad-accum", "max_len": "--max-len", "seed": "--seed", "checkpoint_every": "--checkpoint-every",
    "num_threads": "--threads",
}


def register(app: typer.Typer) -> None:
    @app.command("finetune")
    def finetune_command(
        train: Path = typer.Option(..., "--train", help="QA JSONL, chat JSONL (messages) or SQuAD JSON."),
        out: Path = typer.Option(..., "--out", help="Adapter folder to write (atomically)."),
        mode: str = typer.Option("sft", "--mode", help="sft (closed-book) | sft-context (gold passage) | raft."),
        index: Optional[Path] = typer.Option(None, "--index", help="Index folder (needed for raft)."),
        base_model: str = typer.Option("bundled", "--base-model", help="'bundled' or a local HF causal-LM folder."),
        epochs: int = typer.Option(10, "--epochs"),
        lr: float = typer.Option(1e-3, "--lr"),
        lora_r: int = typer.Option(16, "--lora-r", min=1),
        lora_dropout: float = typer.Option(0.0, "--lora-dropout", min=0.0, max=0.99, help="LoRA dropout."),
        batch_size: int = typer.Option(8, "--batch-size"),
        grad_accum: int = typer.Option(1, "--grad-accum"),
        max_len: int = typer.Option(1024, "--max-len", help="Longer examples are skipped, never cut."),
        checkpoint_every: int = typer.Option(50, "--checkpoint-every", help="Steps between checkpoints."),
        checkpoint_layers: float = typer.Option(0.0, "--checkpoint-layers", min=0.0, max=1.0, help="Recompute this "
                                                "share of the layers in the backward pass (0.5: every other layer): "
                                                "less memory, more time (the demo's RAFT: 0.44 GB less, 31% slower)."),
        resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last checkpoint."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing adapter folder."),
        holdout: float = typer.Option(0.0, "--holdout", help="Hold out this fraction BY DOCUMENT (OUT/heldout.jsonl)."),
        distractors: int = typer.Option(3, "--distractors", min=0, help="RAFT: distractor chunks per example."),
        p_oracle: float = typer.Option(0.8, "--p-oracle", min=0.0, max=1.0, help="RAFT: fraction of examples that keep the oracle."),
        quote: bool = typer.Option(False, "--quote", help="RAFT: quote the supporting sentence before the answer "
                                   "(chain of thought; for larger models: the bundled 135M does better without)."),
        context_sentences: int = typer.Option(0, "--context-sentences", min=0, help="RAFT / sft-context: cut passages to the N sentences closest to the question, as `ask` and `compare` do for local models (default 0: whole passages, which measured better)."),
        export: Optional[Path] = typer.Option(None, "--export", help="Also write the built examples as chat JSONL."),
        export_only: bool = typer.Option(False, "--export-only", help="Build and --export the examples; no training."),
        merge: Optional[Path] = typer.Option(None, "--merge", help="Also write a merged model folder here."),
        qlora: bool = typer.Option(False, "--qlora", help="4-bit base weights (CUDA + bitsandbytes)."),
        seed: int = typer.Option(0, "--seed"),
        min_examples: int = typer.Option(MIN_EXAMPLES, "--min-examples", min=1, help="Refuse to train on fewer "
                                         "examples than this (default: one batch at the default --batch-size)."),
        train_minutes: Optional[float] = typer.Option(None, "--train-minutes", min=0.1, help="Budget: cut the "
                                                      "examples and epochs to fit about M minutes (speed probed on "
                                                      "this machine; --epochs is the most it trains)."),
        threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for training (default: torch's)."),
        nproc: int = typer.Option(1, "--nproc", min=1, help="Train in N local processes (DDP: gloo on CPU, nccl on "
                                  "CUDA); each takes --batch-size examples, so the global batch is N x --batch-size. "
                                  "Several machines: torchrun ... -m ragtune.cli finetune ..."),
        json_out: bool = typer.Option(False, "--json", help="Print the adapter's metrics as JSON."),
    ) -> None:
        """Fine-tune a LoRA adapter (loss on answer tokens only; checkpoints; --resume after a kill)."""
        from ragtune.cli.common import check_output_folder, one_line, print_json
        from ragtune.config import validation_message
        from ragtune.errors import ConfigError, InputError
        from ragtune.train import FinetuneConfig, finetune, load_examples, split_by_document
        from ragtune.train.builders import build_training_set, export_jsonl
        from ragtune.train.data import write_examples_jsonl
        from ragtune.train.distributed import env_ranks

        try:
            config = FinetuneConfig(base_model=base_model, epochs=epochs, lr=lr, lora_r=lora_r, lora_alpha=2 * lora_r,
                                    lora_dropout=lora_dropout,
                                    batch_size=batch_size, grad_accum=grad_accum, max_len=max_len, seed=seed,
                                    checkpoint_every=checkpoint_every, checkpoint_layers=checkpoint_layers,
                                    qlora=qlora, num_threads=threads)
        except ValueError as exc:
            raise ConfigError(f"bad fine-tuning option: {validation_message(exc, SETTING_FLAGS)}") from None
        if not 0.0 <= holdout < 1.0:
            raise ConfigError(f"--holdout is the share of documents held out: at least 0 and below 1 (got {holdout})")
        if train_minutes and (nproc > 1 or resume):
            raise ConfigError("--train-minutes plans a fresh one-process run: drop --nproc / --resume")
        if not export_only:
            check_output_folder(out, "--out")
        loaded = load_examples(train)
        for error in loaded.errors:
            typer.secho(one_line(f"skipped {error}"), fg="yellow", err=True)
        examples, heldout = split_by_document(loaded.examples, holdout, seed) if holdout else (loaded.examples, [])
        built = build_training_set(examples, mode, index, distractors=distractors, p_oracle=p_oracle, seed=seed,
                                   quote=quote, context_sentences=context_sentences)
        if export:
            if export.resolve() == Path(train).resolve():
                raise ConfigError(f"--export {export} is the --train file; choose another path")
            export_jsonl(built, export)
        if export_only:
            if not export:
                raise ConfigError("--export-only needs --export FILE")
            typer.echo(f"wrote {len(built)} {mode} training examples to {export}")
            return _exit_if_skipped(loaded.errors)
        if len(built) < min_examples:
            raise InputError(f"only {len(built)} usable training example(s) in {train} ({len(loaded.errors)} malformed "
                             f"line(s) skipped), fewer than --min-examples {min_examples}: fix the file, or lower "
                             "--min-examples to train anyway")
        plan = None
        if train_minutes:
            from ragtune.train.budget import fit_to_budget

            built, config, plan = fit_to_budget(built, config, train_minutes, seed=seed)
            typer.echo(plan.summary(mode), err=True)
        info = finetune(built, out, config, resume=resume, overwrite=overwrite, nproc=nproc)
        if not env_ranks().is_main:  # under torchrun: rank 0 writes and reports
            return None
        if heldout:
            write_examples_jsonl(heldout, out / "heldout.jsonl")
        if merge:
            from ragtune.train import merge_adapter

            merge_adapter(out, merge, overwrite=overwrite)
        if json_out:
            budget = {"plan": plan.describe()} if plan is not None else {}
            print_json({"adapter": str(out), "examples": len(built), "heldout": len(heldout), **info.metrics,
                        **budget})
            return _exit_if_skipped(loaded.errors)
        m = info.metrics
        typer.echo(f"adapter written to {out}: {len(built)} {mode} examples ({len(loaded.errors)} bad lines skipped), "
                   f"{m['steps']} steps, loss {m['loss_first_epoch']:.3f} -> {m['loss_last_epoch']:.3f}, "
                   f"{m['train_seconds']:.0f} s, {m['tokens_per_s']:.0f} tokens/s")
        if heldout:
            typer.echo(f"held out {len(heldout)} questions by document: {out / 'heldout.jsonl'}")
        _exit_if_skipped(loaded.errors)

    @app.command("merge")
    def merge_command(
        adapter: Path = typer.Argument(..., help="Adapter folder written by `ragtune finetune`."),
        out: Path = typer.Option(..., "--out", help="Merged model folder to write."),
        base_model: Optional[str] = typer.Option(None, "--base-model", help="Default: the adapter's own base."),
        overwrite: bool = typer.Option(False, "--overwrite"),
    ) -> None:
        """Merge a LoRA adapter into its base model: a plain HF model folder (usable with --model)."""
        from ragtune.train import merge_adapter

        merge_adapter(adapter, out, base_model, overwrite=overwrite)
        typer.echo(f"merged model written to {out}")


def _exit_if_skipped(errors: list[str]) -> None:
    """Skipped lines make the exit status 1, as for `ingest`: the work is done, but not on all the input."""
    if errors:
        typer.secho(f"{len(errors)} malformed line(s) skipped", fg="yellow", err=True)
        raise typer.Exit(1)
