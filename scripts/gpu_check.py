#!/usr/bin/env python3
"""ragtune's CUDA paths on a real GPU, through its own API and CLI, on a tiny Llama built here (seconds).

    python scripts/gpu_check.py          # on a machine with CUDA (scripts/gpu-check.sh sets up the carried wheels)
    python scripts/gpu_check.py --cpu    # dry run: the same code paths on the CPU, the CUDA-only ones SKIP

The model: a 2-layer Llama (hidden 64, tied embeddings) on the bundled SmolLM2 tokenizer (49152 tokens), random
weights from a fixed seed; the tokenizer comes from --tokenizer, else ./.gpu_model, else ragtune's converted
bundled model. Each check prints one line (PASS / FAIL / SKIP, seconds, what it measured); one failing check
never stops the others. $OUT/gpu_check.json (OUT defaults to ./gpu_out) holds the summary, rewritten after each
check, and $OUT/gpu_check.log the tracebacks. Exit status 1 when a check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json")
QA = [("What is the code of room {i}?", "R{i}-K{j}"), ("Who keeps the key of locker {i}?", "Agent {j}")]


class Skip(Exception):
    """A check that cannot run here (no CUDA, no bitsandbytes, a check it needs failed)."""


class Report:
    """Runs the checks, prints one line each and keeps the JSON summary current."""

    def __init__(self, out: Path, device: str):
        self.out, self.device, self.checks, self.env = out, device, [], {}
        self.started = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        self.log = open(out / "gpu_check.log", "w", encoding="utf-8")  # noqa: SIM115 - closed in finish()

    def run(self, name: str, fn: Any, *args: Any) -> Any:
        began = time.perf_counter()
        status, details, result = "PASS", {}, None
        try:
            result = fn(*args)
            details = result if isinstance(result, dict) else {}
        except Skip as exc:
            status, details = "SKIP", {"reason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - one failing check must not stop the others
            status = "FAIL"
            details = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:400]}
            self.log.write(f"== {name}\n{traceback.format_exc()}\n")
            self.log.flush()
        seconds = round(time.perf_counter() - began, 2)
        summary = ", ".join(f"{k} {v}" for k, v in details.items() if not isinstance(v, (dict, list)))
        print(f"{status:4} {name:24} {seconds:7.2f}s  {summary}"[:400], flush=True)
        self.checks.append({"name": name, "status": status, "seconds": seconds, "details": details})
        self.write()
        return result if status == "PASS" else None

    def write(self) -> None:
        counts = {s: sum(c["status"] == s for c in self.checks) for s in ("PASS", "FAIL", "SKIP")}
        summary = {"device": self.device, "env": self.env, "checks": self.checks, "passed": counts["PASS"],
                   "failed": counts["FAIL"], "skipped": counts["SKIP"],
                   "seconds": round(time.perf_counter() - self.started, 1)}
        (self.out / "gpu_check.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")

    def finish(self) -> int:
        self.write()
        self.log.close()
        failed = [c["name"] for c in self.checks if c["status"] == "FAIL"]
        print(f"{len(self.checks) - len(failed)} of {len(self.checks)} checks passed or skipped"
              f"{' (failed: ' + ', '.join(failed) + ')' if failed else ''} in "
              f"{time.perf_counter() - self.started:.0f}s; summary in {self.out / 'gpu_check.json'}", flush=True)
        return 1 if failed else 0


def environment(device: str) -> dict[str, Any]:
    import peft
    import torch
    import transformers

    env: dict[str, Any] = {"python": sys.version.split()[0], "torch": torch.__version__,
                           "torch_cuda": torch.version.cuda, "transformers": transformers.__version__,
                           "peft": peft.__version__, "cuda_available": torch.cuda.is_available()}
    try:
        import bitsandbytes

        env["bitsandbytes"] = bitsandbytes.__version__
    except Exception as exc:  # noqa: BLE001 - a broken install is reported, not raised
        env["bitsandbytes"] = f"unavailable ({type(exc).__name__}: {exc})".splitlines()[0][:200]
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["bf16_supported"] = torch.cuda.is_bf16_supported()
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("torch sees no CUDA device (run with --cpu for the dry run)")
    return env


def find_tokenizer(given: str | None) -> Path:
    candidates = [Path(given)] if given else [ROOT / ".gpu_model"]
    if not given:
        from ragtune.paths import cache_dir

        candidates += sorted((cache_dir() / "models").glob("SmolLM2-*"))
    for folder in candidates:
        if (folder / "tokenizer.json").is_file():
            return folder
    raise FileNotFoundError(f"no tokenizer.json in {[str(c) for c in candidates]} (pass --tokenizer DIR)")


def build_model(tokenizer_dir: Path, folder: Path) -> dict[str, Any]:
    """A 2-layer Llama of hidden size 64 on the SmolLM2 tokenizer; random weights from seed 0."""
    import torch
    from transformers import (
        AutoTokenizer,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    folder.mkdir(parents=True, exist_ok=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    except Exception:  # noqa: BLE001 - an older transformers than the one that wrote the config
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_dir / "tokenizer.json"),
                                            bos_token="<|im_start|>", eos_token="<|im_end|>",
                                            pad_token="<|im_end|>", unk_token="<|endoftext|>")
        tokenizer.chat_template = (tokenizer_dir / "chat_template.jinja").read_text(encoding="utf-8")
    if not getattr(tokenizer, "chat_template", None):
        raise RuntimeError(f"the tokenizer in {tokenizer_dir} has no chat template")
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         initializer_range=0.2, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(folder))
    return {"vocab": config.vocab_size, "params": sum(p.numel() for p in model.parameters()),
            "tokenizer": str(tokenizer_dir)}


def examples(n: int) -> list[Any]:
    from ragtune.types import Example

    return [Example(question=q.format(i=i), answer=a.format(i=i, j=i * 7 % 100))
            for i in range(n // 2) for q, a in QA][:n]


def train_examples(n: int) -> list[Any]:
    from ragtune.train import build_sft_examples

    return build_sft_examples(examples(n))


def config(model_dir: Path, device: str, **overrides: Any) -> Any:
    from ragtune.train import FinetuneConfig

    values = {"base_model": str(model_dir), "device": device, "epochs": 8, "batch_size": 4, "lr": 1e-2, "lora_r": 8,
              "lora_alpha": 16, "lora_dropout": 0.0, "checkpoint_every": 0, "seed": 0}
    values.update(overrides)
    return FinetuneConfig(**values)


@contextlib.contextmanager
def captured_training(device: str) -> Any:
    """Record what ragtune's trainer loaded (device, dtype, attention, 4-bit layers) and each step's loss."""
    from ragtune.train import trainer

    seen: dict[str, Any] = {"losses": []}
    original = trainer.load_lora_model

    def load(base_dir: Path, cfg: Any, dev: str) -> Any:
        model, tokenizer = original(base_dir, cfg, dev)
        params = list(model.parameters())
        seen.update(device=str(params[0].device), attn=getattr(model.config, "_attn_implementation", None),
                    lora_dtype=str(next(p for p in params if p.requires_grad).dtype),
                    layers_4bit=sum(type(m).__name__ == "Linear4bit" for m in model.modules()),
                    use_bf16=trainer.bf16_autocast(cfg, dev))
        return model, tokenizer

    trainer.load_lora_model = load
    try:
        yield seen
    finally:
        trainer.load_lora_model = original


def reset_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()


def train_and_check(model_dir: Path, out: Path, device: str, **overrides: Any) -> dict[str, Any]:
    """finetune() as `ragtune finetune` calls it; loss finite and falling, trained on `device`."""
    import torch

    from ragtune.train import finetune

    reset_peak(device)
    with captured_training(device) as seen:
        info = finetune(train_examples(8), out, config(model_dir, device, **overrides), overwrite=True,
                        on_step=lambda step, loss: seen["losses"].append(loss))
    losses = seen["losses"]
    assert losses and all(math.isfinite(x) for x in losses), f"non-finite losses {losses}"
    quarter = max(1, len(losses) // 4)
    first, last = sum(losses[:quarter]) / quarter, sum(losses[-quarter:]) / quarter
    assert last < 0.7 * first, f"loss did not fall: {first:.3f} -> {last:.3f}"
    assert seen["device"].startswith(device), f"trained on {seen['device']}, not {device}"
    assert (out / "adapter_model.safetensors").is_file(), "no adapter written"
    result = {"loss": f"{first:.3f} -> {last:.3f}", "steps": len(losses), "device": seen["device"],
              "attn": seen["attn"], "bf16_autocast": seen["use_bf16"], "lora_dtype": seen["lora_dtype"],
              "tokens_per_s": info.metrics["tokens_per_s"], "first_loss": round(losses[0], 6)}
    if device == "cuda":
        assert seen["use_bf16"], "bf16 autocast is off by default on CUDA"
        assert seen["attn"] == "sdpa", f"attention {seen['attn']!r}, not sdpa"
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    if overrides.get("qlora"):
        assert seen["layers_4bit"] > 0, "no 4-bit layers in the QLoRA model"
        result["layers_4bit"] = seen["layers_4bit"]
    return result


def sft(model_dir: Path, work: Path, device: str) -> dict[str, Any]:
    return train_and_check(model_dir, work / "adapter-sft", device)


def adapter_reload(model_dir: Path, work: Path, device: str, trained: Any) -> dict[str, Any]:
    """The saved adapter loads onto its base on `device` and lowers the answer loss of what it learnt."""
    import torch

    from ragtune.train.adapter import load_adapted_model
    from ragtune.train.collate import collate, tokenize_examples
    from ragtune.train.lora_model import answer_loss_sum

    if not trained:
        raise Skip("needs the adapter of sft")
    model, tokenizer = load_adapted_model(work / "adapter-sft", device=device)
    items = tokenize_examples(train_examples(8), tokenizer, 512).items
    batch = {k: v.to(device) for k, v in collate(items, tokenizer.pad_token_id).items()}
    n = int((batch["labels"][:, 1:] != -100).sum())
    with torch.no_grad():
        adapted = float(answer_loss_sum(model, batch)) / n
        with model.disable_adapter():
            base = float(answer_loss_sum(model, batch)) / n
    assert str(next(model.parameters()).device).startswith(device)
    assert adapted < 0.7 * base, f"reloaded adapter loss {adapted:.3f} vs base {base:.3f}"
    return {"answer_loss": f"base {base:.3f} -> adapter {adapted:.3f}"}


def qlora(model_dir: Path, work: Path, device: str) -> dict[str, Any]:
    if device != "cuda":
        raise Skip("CUDA only (4-bit bitsandbytes kernels)")
    try:
        import bitsandbytes  # noqa: F401
    except Exception as exc:  # ImportError, or a native library that does not load
        raise Skip(f"bitsandbytes does not import: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    return train_and_check(model_dir, work / "adapter-qlora", device, qlora=True)


def checkpointing(model_dir: Path, work: Path, device: str, trained: Any) -> dict[str, Any]:
    """Gradient checkpointing under the same autocast: the same first loss as without, loss still falls."""
    result = train_and_check(model_dir, work / "adapter-ckpt", device, gradient_checkpointing=True)
    if trained:
        gap = abs(result["first_loss"] - trained["first_loss"])
        assert gap < 1e-3 * max(1.0, trained["first_loss"]), f"first loss {result['first_loss']} vs sft's"
        result["first_loss_gap"] = f"{gap:.2e}"
    return result


def loss_parity(model_dir: Path, device: str) -> dict[str, Any]:
    """The trainer's answer-only loss equals the HF loss on `device` (under bf16 autocast on CUDA), with the
    SDPA attention training loads by default and with eager attention."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ragtune.train.collate import collate, tokenize_examples
    from ragtune.train.lora_model import answer_loss_sum

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    items = tokenize_examples(train_examples(4), tokenizer, 512).items
    batch = {k: v.to(device) for k, v in collate(items, tokenizer.pad_token_id).items()}
    n = int((batch["labels"][:, 1:] != -100).sum())
    bf16 = device == "cuda"
    tolerance = 2e-2 if bf16 else 1e-4  # relative
    losses = {}
    for attention in ("sdpa", "eager"):
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32,
                                                     attn_implementation=attention).to(device).eval()
        with torch.no_grad(), torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            ours = float(answer_loss_sum(model, batch)) / n
            reference = float(model(**batch).loss)
        assert abs(ours - reference) < tolerance * reference, f"{attention}: answer loss {ours:.5f} vs HF {reference:.5f}"
        losses[attention] = ours
    gap = abs(losses["sdpa"] - losses["eager"])
    assert gap < tolerance * losses["eager"], f"sdpa {losses['sdpa']:.5f} vs eager {losses['eager']:.5f}"
    return {"answer_loss": round(losses["sdpa"], 5), "eager": round(losses["eager"], 5), "bf16": bf16}


def generation(model_dir: Path, work: Path, device: str, trained: Any) -> dict[str, Any]:
    """ragtune's HFGenerator with the adapter merged, greedy, its model on `device`; compared with the CPU."""
    from ragtune.generate.hf import HFGenerator

    if not trained:
        raise Skip("needs the adapter of sft")
    chats = [example.messages for example in train_examples(8)]
    answers = [example.target for example in train_examples(8)]
    generator = HFGenerator(model_dir, adapter=work / "adapter-sft", batch_size=4)
    generator.model.to(device)
    first = generator.generate(chats, max_new_tokens=12)
    again = generator.generate(chats, max_new_tokens=12)
    assert str(next(generator.model.parameters()).device).startswith(device)
    assert len(first) == len(chats) and [g.text for g in first] == [g.text for g in again], "greedy not repeatable"
    generator.model.to("cpu")
    on_cpu = generator.generate(chats, max_new_tokens=12)
    return {"recalled": f"{sum(g.text == a for g, a in zip(first, answers))}/{len(answers)}",
            "same_as_cpu": f"{sum(g.text == c.text for g, c in zip(first, on_cpu))}/{len(chats)}",
            "tokens": sum(g.completion_tokens for g in first), "sample": first[0].text[:40]}


def one_rank_ddp(model_dir: Path, work: Path, device: str) -> dict[str, Any]:
    """The multi-process path in one process: its process group (nccl on CUDA, gloo on CPU), DDP, the
    all-gathers and the rank metrics, with a world of one (a single GPU cannot hold two nccl ranks)."""
    import dataclasses

    import torch.distributed as dist

    from ragtune.train import trainer
    from ragtune.train.distributed import STORE_ENV, Ranks

    @dataclasses.dataclass(frozen=True)
    class OneRankGroup(Ranks):
        @property
        def distributed(self) -> bool:
            return True

    store = work / "ddp-store"
    store.unlink(missing_ok=True)
    backends: list[str] = []
    original = trainer.env_ranks
    trainer.env_ranks = lambda: OneRankGroup(0, 1, 0)
    os.environ[STORE_ENV] = str(store)
    try:
        from ragtune.train import finetune

        info = finetune(train_examples(8), work / "adapter-ddp", config(model_dir, device, epochs=2),
                        overwrite=True, on_step=lambda step, loss: backends.append(dist.get_backend()))
    finally:
        trainer.env_ranks = original
        os.environ.pop(STORE_ENV, None)
    expected = "nccl" if device == "cuda" else "gloo"
    assert set(backends) == {expected}, f"backend {set(backends)}, not {expected}"
    assert info.metrics["world_size"] == 1 and info.metrics["rank_weight_max_diff"] == 0.0, info.metrics
    assert not dist.is_initialized(), "the process group was left open"
    return {"backend": expected, "steps": info.metrics["steps"],
            "loss": f"{info.metrics['loss_first_epoch']:.3f} -> {info.metrics['loss_last_epoch']:.3f}"}


def cli_finetune(model_dir: Path, work: Path, device: str) -> dict[str, Any]:
    """`ragtune finetune --json` in a subprocess (device chosen by the CLI: CUDA when present)."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device: the CLI would train on the CPU")
    qa = work / "qa.jsonl"
    qa.write_text("".join(json.dumps({"question": e.question, "answer": e.answer}) + "\n" for e in examples(8)),
                  encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    command = [sys.executable, "-m", "ragtune.cli", "finetune", "--train", str(qa), "--out", str(work / "adapter-cli"),
               "--base-model", str(model_dir), "--epochs", "8", "--batch-size", "4", "--lr", "0.01", "--lora-r", "8",
               "--checkpoint-every", "0", "--min-examples", "1", "--overwrite", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180, check=False)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"
    metrics = json.loads(done.stdout[done.stdout.index("{"):])
    assert metrics["loss_last_epoch"] < 0.7 * metrics["loss_first_epoch"], metrics
    return {"loss": f"{metrics['loss_first_epoch']:.3f} -> {metrics['loss_last_epoch']:.3f}",
            "steps": metrics["steps"], "tokens_per_s": metrics["tokens_per_s"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="dry run on the CPU (CUDA-only checks SKIP)")
    parser.add_argument("--tokenizer", help="folder with the SmolLM2 tokenizer files (default: ./.gpu_model, "
                                            "else ragtune's converted bundled model)")
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu_out", help="summary folder ($OUT)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (model, adapters)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only: a GPU machine may have no network
    device = "cpu" if args.cpu else "cuda"
    report = Report(Path(args.out), device)
    work = Path(tempfile.mkdtemp(prefix="ragtune-gpu-check-"))
    model_dir = work / "tiny-llama"
    try:
        report.env = report.run("environment", environment, device) or {}
        built = report.run("build_model", lambda: build_model(find_tokenizer(args.tokenizer), model_dir))
        if built is None:
            return report.finish()
        report.run("answer_loss_parity", loss_parity, model_dir, device)
        trained = report.run("sft_bf16_sdpa" if device == "cuda" else "sft", sft, model_dir, work, device)
        report.run("adapter_reload", adapter_reload, model_dir, work, device, trained)
        report.run("generate_hf_adapter", generation, model_dir, work, device, trained)
        report.run("qlora", qlora, model_dir, work, device)
        report.run("grad_checkpointing", checkpointing, model_dir, work, device, trained)
        report.run("ddp_one_rank_" + ("nccl" if device == "cuda" else "gloo"), one_rank_ddp, model_dir, work, device)
        report.run("cli_finetune", cli_finetune, model_dir, work, device)
        return report.finish()
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
