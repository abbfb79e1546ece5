"""The ONNX export of a sentence-transformers model, for ragtune.index.onnx_encoder (queries and documents).

A single short query spent ~11 ms in PyTorch's eager transformer forward on one core here, almost all of it
per-operator overhead; ONNX Runtime runs the exported graph (with its fused attention / layer-norm kernels) in a
few ms, tokenizer included, with the same vectors (to 1e-5; tests check it). That is what brings dense and hybrid
query latency at 100k chunks under 10 ms (bench/bench_latency.py).

The graph is exported once per model folder (transformer + mean pooling + L2 normalisation in one graph) into
ragtune's cache dir, written atomically, and reused by every later process. Only models whose
sentence-transformers pipeline is exactly Transformer -> mean Pooling -> Normalize qualify (the bundled
MiniLM does); anything else keeps sentence-transformers' own encode. Set RAGTUNE_QUERY_BACKEND=torch to
turn this path off.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# bump when the exported graph changes, so stale caches are not reused (2: eager attention; 3: int8 keeps layer 1 fp32)
EXPORT_FORMAT_VERSION = 3
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
BACKEND_ENV = "RAGTUNE_QUERY_BACKEND"  # "auto" (default): ONNX Runtime when installed; "torch": never

from ragtune.atomic import atomic_path


def backend_wanted() -> bool:
    """Whether the ONNX query path is enabled (RAGTUNE_QUERY_BACKEND is not 'torch')."""
    return os.environ.get(BACKEND_ENV, "auto").strip().lower() not in {"torch", "off", "0"}


def is_mean_pooled(st_model: Any) -> bool:
    """True when a SentenceTransformer is Transformer -> mean Pooling -> Normalize (what the graph computes)."""
    modules = list(st_model)
    if len(modules) != 3:
        return False
    transformer, pooling, normalize = modules
    if type(normalize).__name__ != "Normalize" or type(pooling).__name__ != "Pooling":
        return False
    config = pooling.get_config_dict() if hasattr(pooling, "get_config_dict") else {}
    mode = config.get("pooling_mode")
    if mode is None:  # older sentence-transformers spell it as one flag per mode
        flags = [key for key, value in config.items() if key.startswith("pooling_mode_") and value]
        mode = "mean" if flags == ["pooling_mode_mean_tokens"] else None
    return mode == "mean" and hasattr(transformer, "auto_model") and hasattr(transformer, "tokenizer")


def export_path(model_dir: str | Path) -> Path:
    """Where the exported graph of a model folder is cached: keyed by its files' names, sizes and times."""
    from ragtune.paths import cache_dir

    root = Path(model_dir).resolve()
    digest = hashlib.sha256(f"v{EXPORT_FORMAT_VERSION}:{root}".encode())
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return cache_dir() / "onnx" / f"{root.name}-{digest.hexdigest()[:16]}" / "query_encoder.onnx"


def export_query_graph(transformer: Any, target: Path) -> Path:
    """Export transformer forward + mean pooling + normalisation to an ONNX file, atomically."""
    import torch

    class _Pooled(torch.nn.Module):
        def __init__(self, model: torch.nn.Module):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001 (traced)
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state  # (batch, seq, dim)
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (batch, dim)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    # Two texts of different lengths, so the trace sees a padded batch and keeps the mask arithmetic general.
    sample = transformer.tokenizer(
        ["ragtune query", "a longer sample query for the exporter"], padding=True, return_tensors="pt"
    )
    inputs = tuple(_input(sample, name) for name in INPUT_NAMES)
    with _eager_attention(transformer.auto_model), atomic_path(target, suffix=".onnx") as tmp, torch.no_grad(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about constant-folded Python branches
        torch.onnx.export(
            _Pooled(transformer.auto_model).eval(),
            inputs,
            str(tmp),
            input_names=list(INPUT_NAMES),
            output_names=["embedding"],
            dynamic_axes={name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES},
            opset_version=17,
            dynamo=False,
        )
    return target


@contextlib.contextmanager
def _eager_attention(model: Any) -> Iterator[None]:
    """Trace the model's eager attention (matmul, scale, mask, softmax, matmul), not torch's SDPA: ONNX Runtime's
    optimizer fuses only the former into its Attention kernel (SDPA's trace, with its NaN guards, stayed 48
    MatMuls), and the quantiser's int8 MatMuls follow the same graph. MiniLM on 683 SciFact chunks
    (bench/bench_encoder.py): fp32 1.03x -> 1.32x and int8 1.55x -> 2.69x bare sentence-transformers encode,
    the same vectors to 1e-5. The model's own setting is restored after."""
    previous = getattr(getattr(model, "config", None), "_attn_implementation", None)
    switch = previous not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(previous)


def _input(features: Any, name: str) -> Any:
    import torch

    if name in features:
        return features[name]
    return torch.zeros_like(features["input_ids"])  # token_type_ids for tokenizers that do not emit them
