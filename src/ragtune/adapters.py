"""The adapter manifest and its checks: was this LoRA adapter trained on this base model?

Every adapter folder ragtune writes holds `ragtune_adapter.json` (see ragtune.train.adapter) with the base model's
name, architecture and sha256 over config + weights. `check_adapter` holds an adapter against a base model folder;
generate runs it before loading an adapter, evaluate before a compare run, train after training.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError, NotBuiltError

logger = logging.getLogger(__name__)

MANIFEST = "ragtune_adapter.json"
FORMAT_VERSION = 1
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
_fingerprints: dict[tuple[str, int, int], str] = {}


def model_fingerprint(model_dir: str | Path) -> str:
    """sha256 over a model folder's config.json and weight files (cached per process by size and mtime)."""
    model_dir = Path(model_dir)
    files = [model_dir / "config.json"] + sorted(
        p for p in model_dir.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES
    )
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _fingerprints:
            file_digest = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    file_digest.update(block)
            _fingerprints[key] = file_digest.hexdigest()
        digest.update(path.name.encode() + b"\0" + _fingerprints[key].encode() + b"\n")
    return digest.hexdigest()


def architecture(model_dir: Path) -> dict[str, Any]:
    """The config.json fields an adapter must match (model type and sizes)."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    keys = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size", "intermediate_size")
    return {k: config.get(k) for k in keys}


def read_manifest(adapter_dir: str | Path) -> dict[str, Any]:
    """The manifest of an adapter folder; NotBuiltError when the folder or its peft files are missing."""
    adapter_dir = Path(adapter_dir)
    if not adapter_dir.is_dir():
        partial = adapter_dir.with_name(adapter_dir.name + ".partial")
        hint = f" (an unfinished run is in {partial}: rerun with --resume)" if partial.is_dir() else ""
        raise NotBuiltError(f"adapter folder not found: {str(adapter_dir)!r}{hint}")
    if not (adapter_dir / "adapter_config.json").is_file() or not any(
        (adapter_dir / f"adapter_model{s}").is_file() for s in (".safetensors", ".bin")
    ):
        raise NotBuiltError(f"{str(adapter_dir)!r} is not a complete adapter (adapter_config.json/adapter_model missing)")
    path = adapter_dir / MANIFEST
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise NotBuiltError(f"{path}: corrupt manifest ({exc.msg})") from exc


def check_adapter(adapter_dir: str | Path, base_model_dir: str | Path) -> dict[str, Any]:
    """Check that an adapter was trained on this base model; returns its manifest.

    Raises NotBuiltError when the adapter is missing/incomplete and ConfigError when the base model differs
    (architecture or weights). An adapter without a ragtune manifest (trained elsewhere) is accepted with a
    warning when its architecture cannot be checked.
    """
    manifest = read_manifest(adapter_dir)
    base_model_dir = Path(base_model_dir)
    if not manifest:
        logger.warning("%s has no %s: cannot verify its base model", adapter_dir, MANIFEST)
        return manifest
    expected = manifest.get("base_model", {})
    name = expected.get("name", "?")
    actual_arch = architecture(base_model_dir)
    for key, value in (expected.get("architecture") or {}).items():
        if value is not None and actual_arch.get(key) != value:
            raise ConfigError(
                f"adapter {str(adapter_dir)!r} was trained on base model {name!r} ({key}={value}), "
                f"but {str(base_model_dir)!r} has {key}={actual_arch.get(key)}: use the base model it was trained on"
            )
    sha = expected.get("sha256")
    if sha and model_fingerprint(base_model_dir) != sha:
        raise ConfigError(
            f"adapter {str(adapter_dir)!r} was trained on base model {name!r} (sha256 {sha[:12]}), "
            f"but {str(base_model_dir)!r} has different weights: use the base model it was trained on"
        )
    return manifest
