"""Training throughput: ragtune's LoRA trainer vs a plain HF `Trainer` + peft baseline, same run.

Same model (bundled SmolLM2-135M, fp32, CPU), same LoRA config (all-linear, r=16; the baseline keeps peft
recipes' usual lora_dropout=0.05, ragtune its default 0), same tokenised examples
(SQuAD questions with their gold paragraph in the prompt, short answers: lengths vary like real RAG prompts),
same batch size and number of steps (one pass over the examples). Each variant runs in its own subprocess so
its peak RSS (VmHWM) is its own. Tokens/s counts real (non-pad) tokens only. The issue's goal for ragtune:
at most 0.5x the baseline's peak memory at 1.5x or more of its tokens/s.

    .venv/bin/python bench/bench_train.py [--examples 160] [--batch-size 8] [--threads 0]

--nproc 1,2 instead compares ragtune alone in 1 vs 2 processes (DDP over gloo) at the same global batch
(--batch-size split over the processes, same steps): tokens/s and peak RSS per rank and in total (the ranks plus
the launching process).

    .venv/bin/python bench/bench_train.py --nproc 1,2 --examples 16 --batch-size 4
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad" / "squad-v1.1-dev-even.json"
VARIANTS = ("hf_trainer", "ragtune_random_batches", "ragtune")


def _train_examples(n: int, seed: int):
    from ragtune.train import build_sft_examples, load_examples

    examples = load_examples(DATA).examples
    random.Random(seed).shuffle(examples)
    return build_sft_examples(examples[:n], with_context=True)


def _run_ragtune(args, group_by_length: bool, nproc: int = 1) -> dict:
    from ragtune.train import FinetuneConfig, finetune

    train = _train_examples(args.examples, args.seed)
    config = FinetuneConfig(epochs=1, batch_size=max(1, args.batch_size // nproc), lr=1e-3, lora_r=16, lora_alpha=32,
                            checkpoint_every=0, max_len=1024, num_threads=max(1, args.threads // nproc),
                            seed=args.seed, group_by_length=group_by_length)
    with tempfile.TemporaryDirectory() as tmp:
        info = finetune(train, Path(tmp) / "adapter", config, nproc=nproc)
    m = info.metrics
    return {"steps": m["steps"], "tokens": m["tokens"], "pad_fraction": m["pad_fraction"],
            "seconds": m["train_seconds"], "loss": m["loss_last_epoch"], "rank_rss_mb": m.get("peak_rss_mb_ranks")}


def _run_hf_trainer(args) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer,
                              TrainerCallback, TrainingArguments)

    from ragtune.models import resolve_llm
    from ragtune.train.collate import tokenize_examples

    torch.set_num_threads(args.threads)
    base = resolve_llm()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    items = tokenize_examples(_train_examples(args.examples, args.seed), tokenizer, 1024).items
    dataset = [{"input_ids": x.input_ids, "attention_mask": [1] * len(x), "labels": x.labels} for x in items]
    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    counts = {"real": 0, "padded": 0}
    collator = DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100)

    def counting_collator(features):
        batch = collator(features)
        counts["real"] += int(batch["attention_mask"].sum())
        counts["padded"] += batch["input_ids"].numel()
        return batch

    class Clock(TrainerCallback):
        def on_train_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_train_end(self, *a, **k):
            self.seconds = time.perf_counter() - self.start

    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        training_args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=args.batch_size, num_train_epochs=1, learning_rate=1e-3,
            warmup_steps=0.05, lr_scheduler_type="linear", save_strategy="no", report_to="none", use_cpu=True,
            logging_steps=10_000, disable_tqdm=True, seed=args.seed, dataloader_num_workers=0,
            remove_unused_columns=False)
        trainer = Trainer(model=model, args=training_args, train_dataset=dataset, data_collator=counting_collator,
                          callbacks=[clock])
        result = trainer.train()
    return {"steps": result.global_step, "tokens": counts["real"], "seconds": clock.seconds,
            "pad_fraction": 1 - counts["real"] / counts["padded"], "loss": result.training_loss}


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MB; ru_maxrss where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(args) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ragtune.progress import set_progress

    set_progress(False)
    if args.variant == "hf_trainer":
        result = _run_hf_trainer(args)
    elif args.variant.startswith("nproc"):
        result = _run_ragtune(args, group_by_length=True, nproc=int(args.variant[len("nproc"):]))
    else:
        result = _run_ragtune(args, group_by_length=args.variant == "ragtune")
    result["peak_rss_mb"] = _peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads for every variant (0: all cores, or 1 when the machine is oversubscribed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--nproc", help="compare ragtune in these process counts instead, e.g. 1,2")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        _child(args)
        return
    if not DATA.is_file():
        print(f"shared data not found at {DATA}: nothing to benchmark")
        return
    if args.threads == 0:
        cores = os.cpu_count() or 1
        args.threads = 1 if os.getloadavg()[0] > cores + 1 else cores
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: {args.threads} torch thread(s)", flush=True)
    if args.nproc:
        args.variants = ",".join(f"nproc{n}" for n in args.nproc.split(","))
    results = {}
    for variant in args.variants.split(","):
        cmd = [sys.executable, __file__, "--variant", variant, "--examples", str(args.examples),
               "--batch-size", str(args.batch_size), "--threads", str(args.threads), "--seed", str(args.seed)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"{variant} failed:\n{proc.stderr[-2000:]}")
            continue
        results[variant] = json.loads(line[len("RESULT "):])
        print(f"done {variant}: {results[variant]}", flush=True)
    if args.nproc:
        return _print_nproc(args, results)
    base = results.get("hf_trainer")
    print(f"\n{args.examples} SQuAD examples with gold paragraph, batch {args.batch_size}, one epoch, "
          f"LoRA all-linear r=16, fp32 CPU, {args.threads} thread(s)")
    print(f"{'variant':<24}{'steps':>6}{'real tok':>10}{'pad %':>7}{'s':>8}{'tok/s':>8}{'peak MB':>9}"
          f"{'loss':>7}{'x tok/s':>9}{'x mem':>7}")
    for variant, r in results.items():
        tps = r["tokens"] / r["seconds"]
        ratio = f"{tps / (base['tokens'] / base['seconds']):.2f}" if base else "-"
        mem = f"{r['peak_rss_mb'] / base['peak_rss_mb']:.2f}" if base else "-"
        print(f"{variant:<24}{r['steps']:>6}{r['tokens']:>10}{100 * r['pad_fraction']:>7.1f}{r['seconds']:>8.1f}"
              f"{tps:>8.0f}{r['peak_rss_mb']:>9.0f}{r['loss']:>7.3f}{ratio:>9}{mem:>7}")
    ours = results.get("ragtune")
    if base and ours:
        speed = (ours["tokens"] / ours["seconds"]) / (base["tokens"] / base["seconds"])
        memory = ours["peak_rss_mb"] / base["peak_rss_mb"]
        print(f"goal (memory <= 0.5x at >= 1.5x tokens/s): memory {memory:.2f}x "
              f"{'met' if memory <= 0.5 else 'NOT met'}, tokens/s {speed:.2f}x {'met' if speed >= 1.5 else 'NOT met'}")


def _print_nproc(args, results: dict) -> None:
    print(f"\n{args.examples} SQuAD examples with gold paragraph, global batch {args.batch_size}, one epoch, "
          f"LoRA all-linear r=16, fp32 CPU, max(1, {args.threads} // nproc) torch thread(s) per process; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    print(f"{'nproc':<7}{'steps':>6}{'real tok':>10}{'s':>8}{'tok/s':>8}{'rank MB':>16}{'total MB':>10}{'loss':>8}"
          f"{'x tok/s':>9}{'x mem':>7}")
    base = results.get("nproc1")
    for variant, r in results.items():
        ranks = r["rank_rss_mb"] or [r["peak_rss_mb"]]
        total = sum(ranks) + (r["peak_rss_mb"] if r["rank_rss_mb"] else 0)  # the launcher holds memory too
        r["total_mb"] = total
        tps = r["tokens"] / r["seconds"]
        ratio = f"{tps / (base['tokens'] / base['seconds']):.2f}" if base else "-"
        mem = f"{total / base['total_mb']:.2f}" if base else "-"
        print(f"{variant[5:]:<7}{r['steps']:>6}{r['tokens']:>10}{r['seconds']:>8.1f}{tps:>8.0f}"
              f"{'/'.join(f'{x:.0f}' for x in ranks):>16}{total:>10.0f}{r['loss']:>8.3f}{ratio:>9}{mem:>7}")


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    main()
