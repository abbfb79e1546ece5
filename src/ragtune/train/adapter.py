"""The adapter folder: peft LoRA weights plus a ragtune manifest; writing, loading and merging (the manifest
checks live in ragtune.adapters, below generate, which runs them before loading an adapter).

An adapter folder is what `peft.PeftModel.from_pretrained(base, folder)` loads (adapter_config.json +
adapter_model.safetensors) plus `ragtune_adapter.json`: format version, base model name and sha256 (config +
weights), LoRA and training config, training-data hash, metrics, package versions, creation time. It is always
written into a temporary folder and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ragtune.adapters import (  # noqa: F401  (check_adapter, read_manifest: re-exported)
    FORMAT_VERSION,
    MANIFEST,
    architecture,
    check_adapter,
    model_fingerprint,
    read_manifest,
)
from ragtune.atomic import place_dir  # noqa: F401  (re-exported: the trainer places adapters with it)
from ragtune.config import BUNDLED
from ragtune.errors import ConfigError, InputError


MERGED_MANIFEST = "ragtune_merged.json"


@dataclass(frozen=True)
class AdapterInfo:
    """A finished adapter folder and what its manifest says."""

    path: Path
    base_model: str
    base_model_sha256: str
    metrics: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)


def resolve_base_model(name: str = BUNDLED) -> Path:
    """The local HF folder of a base model: 'bundled' (converted once, see ragtune.models) or a folder."""
    from ragtune.models import resolve_llm

    if name.startswith(("http://", "https://")):
        raise ConfigError(f"cannot fine-tune a remote endpoint: {name!r} (use 'bundled' or a local model folder)")
    return Path(resolve_llm(name))


def write_adapter(model: Any, folder: Path, manifest: dict[str, Any]) -> None:
    """Save a PeftModel's adapter and the manifest into `folder` (a temporary folder the caller renames)."""
    model.save_pretrained(str(folder), safe_serialization=True)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")


def build_manifest(
    *, base_name: str, base_dir: Path, lora: dict[str, Any], training: dict[str, Any], data: dict[str, Any],
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """The ragtune_adapter.json content."""
    import peft
    import torch
    import transformers

    from ragtune.version import __version__

    return {
        "format_version": FORMAT_VERSION,
        "kind": "ragtune-lora-adapter",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ragtune_version": __version__,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "base_model": {"name": base_name, "path": str(base_dir.resolve()), "sha256": model_fingerprint(base_dir),
                       "architecture": architecture(base_dir)},
        "lora": lora,
        "training": training,
        "data": data,
        "metrics": metrics,
    }


def load_adapted_model(
    adapter_dir: str | Path, base_model: str | None = None, *, device: str = "cpu", dtype: Any = None
) -> tuple[Any, Any]:
    """(PeftModel, tokenizer) with the adapter on its base model, after check_adapter.

    base_model defaults to the one named in the manifest ('bundled' or a folder).
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    manifest = read_manifest(adapter_dir)
    recorded = manifest.get("base_model", {})
    name = base_model or recorded.get("name") or BUNDLED
    if base_model is None and name != BUNDLED and not Path(name).is_dir() and recorded.get("path"):
        name = recorded["path"]  # a relative folder name recorded from another working directory
    base_dir = resolve_base_model(name)
    check_adapter(adapter_dir, base_dir)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=dtype or torch.float32).to(device)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    from ragtune.generate.hf import peft_quietly

    with peft_quietly():
        return PeftModel.from_pretrained(model, str(adapter_dir)).eval(), tokenizer


def merge_adapter(
    adapter_dir: str | Path, out_dir: str | Path, base_model: str | None = None, *, overwrite: bool = False
) -> Path:
    """Write a standalone model folder with the LoRA weights merged in (loads with plain transformers)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise ConfigError(f"output folder already exists: {str(out_dir)!r}")
    adapter_at = Path(adapter_dir).resolve()
    if out_dir.resolve() == adapter_at or out_dir.resolve() in adapter_at.parents:
        raise ConfigError(f"--out {out_dir} holds the adapter being merged; choose another folder")
    model, tokenizer = load_adapted_model(adapter_dir, base_model)
    merged = model.merge_and_unload()
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        merged.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        info = {"format_version": FORMAT_VERSION, "kind": "ragtune-merged-model", "adapter": str(adapter_dir),
                "adapter_manifest": read_manifest(adapter_dir),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        (tmp / MERGED_MANIFEST).write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
        place_dir(tmp, out_dir, overwrite=overwrite)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"cannot write merged model to {str(out_dir)!r}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
