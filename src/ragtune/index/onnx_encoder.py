"""Document and query embedding through ONNX Runtime: fused fp32 graph, optional int8, batches by length.

Ingestion used to spend its whole time in sentence-transformers' PyTorch forward. This runs the graph that
ragtune.index.onnx_query exports (transformer + mean pooling + normalisation), after two offline steps cached
beside it:
- fusion (onnxruntime.transformers' BERT optimizer: fused attention, skip-layer-norm, bias-GELU): the same
  arithmetic in fewer kernels, so fp32 vectors still equal PyTorch's to 1e-5 (tests check it);
- optionally int8 dynamic quantisation of the MatMul weights, per output channel (per-tensor scales lost too
  much: cosine to fp32 fell to 0.90 on SciFact abstracts; per channel keeps it >= 0.99), the first layer kept
  in fp32 (`_quantise`). An int8 index records `precision: int8` and the graph's export format (`int8_graph`) in
  its manifest and is never mixed with fp32 vectors or another graph's int8 ones (ragtune.index.store).
Texts are tokenised once without padding, sorted by token count and cut into batches under a token budget, so
a batch pads to its own longest text, not to the longest of the whole call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.atomic import atomic_path
from ragtune.errors import ConfigError
from ragtune.index.onnx_query import INPUT_NAMES, export_path, export_query_graph

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8")
THREADS_ENV = "RAGTUNE_ENCODER_THREADS"  # intra-op threads for document batches (default: all cores, at most 2)
# Padded tokens per document batch (8 chunks of 256 tokens). Measured with bench/bench_encoder.py (683 SciFact chunks,
# 2 cores, same run as bare sentence-transformers encode): 8192 gave fp32 0.73x / int8 1.34x the bare encode's
# chunks/s, 2048 gave 1.05x / 1.76x (1024 and 512 about the same), and ONNX Runtime's arena, which keeps the
# largest batch's buffers for the process's life, holds ~0.35 GB less.
TOKEN_BUDGET = 8 * 256


def check_precision(precision: str | None) -> str | None:
    """`precision` when ragtune knows it; None (a user who gave none: the embedder's default) passes through."""
    if precision is not None and precision not in PRECISIONS:
        raise ConfigError(f"unknown embedding precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    return precision


def default_threads() -> int:
    """Document-batch threads: RAGTUNE_ENCODER_THREADS, else the cores this process may use, at most 2.

    Two, not more: on the 2-core machines ragtune targets a third spinning thread only steals from the
    tokenizer and the other process; a big batch splits well across two."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ConfigError(f"{THREADS_ENV} must be a whole number, got {value!r}") from None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(2, cores))


def graph_for(transformer: Any, model_dir: str | Path, precision: str = "fp32") -> Path:
    """The cached ONNX graph of a mean-pooled model at this precision, built on first use (atomically)."""
    check_precision(precision)
    raw, fused, quantised = _graph_paths(model_dir)
    if not raw.exists():
        logger.info("exporting the encoder to ONNX (once): %s", raw)
        export_query_graph(transformer, raw)
    if not fused.exists():
        _write_atomic(fused, lambda tmp: _fuse(raw, tmp, getattr(transformer.auto_model, "config", None)))
    if precision == "fp32":
        return fused
    if not quantised.exists():
        logger.info("quantising the encoder to int8 (once): %s", quantised)
        config = getattr(transformer.auto_model, "config", None)
        _write_atomic(quantised, lambda tmp: _quantise(raw, tmp, int(getattr(config, "num_hidden_layers", 0) or 0)))
    return quantised


def _graph_paths(model_dir: str | Path) -> tuple[Path, Path, Path]:
    """The exported, fused and quantised graphs' paths (the third only built for int8)."""
    raw = export_path(model_dir)
    return raw, raw.with_name("encoder.fp32.onnx"), raw.with_name("encoder.int8.onnx")


def _graph_ready(model_dir: str | Path, precision: str) -> bool:
    raw, fused, quantised = _graph_paths(model_dir)
    return raw.exists() and fused.exists() and (precision == "fp32" or quantised.exists())


def _graph_in_child(model_dir: str | Path, precision: str) -> None:
    """Build the graphs in a fresh interpreter that loads the model from its folder. Export and fusion pull in
    torch.onnx, onnx and ONNX Runtime's optimizer and peak ~0.7 GB above the loaded model (MiniLM); that memory
    stays in the heap of the process that ingests and then trains (the demo carried ~0.3 GB of it through its
    training), so it is spent in a child that gives it back when it exits. Errors come back as raised."""
    from ragtune.fresh_process import call_in_fresh_process

    call_in_fresh_process(_graph_child, str(model_dir), precision)


def _graph_child(model_dir: str, precision: str) -> None:
    from sentence_transformers import SentenceTransformer

    graph_for(SentenceTransformer(model_dir, device="cpu")[0], model_dir, precision)


def _fuse(source: Path, target: Path, config: Any) -> None:
    """BERT kernel fusion; when the optimizer cannot handle the graph, the unfused graph is copied as is."""
    import shutil

    try:
        from onnxruntime.transformers import optimizer

        model = optimizer.optimize_model(
            str(source), model_type="bert",
            num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
            hidden_size=int(getattr(config, "hidden_size", 0) or 0),
        )
        model.save_model_to_file(str(target))
    except Exception as exc:  # noqa: BLE001 (fusion is an optimisation; the raw graph computes the same)
        logger.warning("ONNX fusion skipped (%s: %s)", type(exc).__name__, exc)
        shutil.copyfile(source, target)


def _quantise(source: Path, target: Path, layers: int = 0) -> None:
    """int8 weights for the MatMuls, one scale per output channel; activations quantised per batch at run time.

    The first of `layers` transformer layers stays fp32 (its weight MatMuls come first in the graph's order): it
    reads the raw embeddings, and quantising it cost the most. MiniLM on SciFact (full corpus re-embedded, 300
    test queries): every layer int8 moved nDCG@10 by -0.0058 dense / -0.0010 hybrid, outside the 0.005 budget;
    the first layer in fp32 -0.0030 / +0.0006, at 2.3x instead of 2.9x bare sentence-transformers encode (mean
    cosine to fp32 0.9963 vs 0.9949; the last layer kept instead: 0.9952, the FFN outputs: 0.9977 but 2.0x).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    matmuls = [node.name for node in graph.node if node.op_type == "MatMul" and any(i in weights for i in node.input)]
    first_layer = matmuls[: len(matmuls) // layers] if layers and len(matmuls) % layers == 0 else []
    with _without_preprocess_hint():
        quantize_dynamic(
            str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"],
            nodes_to_exclude=first_layer,
        )


def _no_preprocess_hint(record: logging.LogRecord) -> bool:
    return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _without_preprocess_hint() -> Iterator[None]:
    """quantize_dynamic logs "Please consider to run pre-processing before quantization" on the root logger (a
    shape-inference step for image models; MiniLM's graph is already fused): nothing a user can act on. Held back;
    its other warnings still print, and a root without handlers gets one only meanwhile (logging.warning would
    otherwise call basicConfig, which then prints every later root record of the process)."""
    root = logging.getLogger()
    placeholder = logging.StreamHandler() if not root.handlers else None
    root.addFilter(_no_preprocess_hint)
    if placeholder is not None:
        root.addHandler(placeholder)
    try:
        yield
    finally:
        root.removeFilter(_no_preprocess_hint)
        if placeholder is not None:
            root.removeHandler(placeholder)


def _write_atomic(target: Path, write: Callable[[Path], None]) -> None:
    with atomic_path(target, suffix=".onnx") as tmp:
        write(tmp)


def length_batches(lengths: np.ndarray, batch_size: int, token_budget: int = TOKEN_BUDGET) -> list[np.ndarray]:
    """Row indices cut into batches, longest texts first; each batch has <= batch_size rows and
    <= token_budget tokens once padded to its longest row (at least one row per batch)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches = []
    start = 0
    while start < len(order):
        longest = max(1, int(lengths[order[start]]))
        size = max(1, min(batch_size, token_budget // longest))
        batches.append(order[start : start + size])
        start += size
    return batches


class OnnxEncoder:
    """Embeds texts with ONNX Runtime -> (n, dim) float32, L2-normalised, rows in input order."""

    def __init__(self, tokenizer: Any, graph: Path, max_length: int, threads: int = 1, precision: str = "fp32"):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No spin-waiting between kernels: on a loaded 2-core machine a spinning worker steals the core the
        # other thread (or the tokenizer) needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self._tokenizer = tokenizer
        self._max_length = max_length
        self._lock = threading.Lock()
        self.graph = graph
        self.threads = threads
        self.precision = check_precision(precision)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(n, dim) float32; texts are batched by token count so padding stays small.

        The int8 graph quantises activations with one scale per run, taken over the whole padded batch, so a
        batched text's vector depends on the texts beside it (up to 0.02 per component): queries go one at a time
        (ragtune.index.embed.Embedder.encode_queries), documents in batches (about 1.5x faster)."""
        texts = list(texts)
        ids = self._tokenizer(texts, truncation=True, max_length=self._max_length)["input_ids"]
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        out: np.ndarray | None = None
        for rows in length_batches(lengths, batch_size):
            vectors = self._run(self._pad([ids[i] for i in rows]))
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
        assert out is not None
        return out

    @staticmethod
    def _pad(rows: list[list[int]]) -> dict[str, np.ndarray]:
        width = max(len(r) for r in rows)
        input_ids = np.zeros((len(rows), width), dtype=np.int64)  # (batch, seq); pad id 0 is masked out
        mask = np.zeros_like(input_ids)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        assert set(feed) == set(INPUT_NAMES)
        with self._lock:
            (vectors,) = self._session.run(None, feed)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def load_encoder(
    st_model: Any, model_dir: str | Path, max_length: int, precision: str = "fp32", threads: int | None = None
) -> OnnxEncoder | None:
    """An OnnxEncoder for a mean-pooled sentence-transformers model; None (use PyTorch) when onnxruntime is
    missing, the pipeline is not mean-pooled, or export fails. int8 without ONNX Runtime is a ConfigError:
    PyTorch cannot reproduce the quantised vectors."""
    from ragtune.index.onnx_query import backend_wanted, is_mean_pooled

    check_precision(precision)
    usable = is_mean_pooled(st_model) and (backend_wanted() or precision == "int8")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        usable = False
    if usable:
        if not _graph_ready(model_dir, precision) and Path(model_dir).is_dir():
            try:
                _graph_in_child(model_dir, precision)
            except Exception as exc:  # noqa: BLE001 (the export below, in this process, succeeds or reports it)
                logger.info("ONNX export in a child process failed (%s: %s); exporting here", type(exc).__name__, exc)
        try:
            graph = graph_for(st_model[0], model_dir, precision)
            return OnnxEncoder(st_model[0].tokenizer, graph, max_length, threads or default_threads(), precision)
        except Exception as exc:  # noqa: BLE001 (fp32 falls back to torch; int8 cannot)
            logger.warning("ONNX encoder unavailable (%s: %s)", type(exc).__name__, exc)
    if precision == "int8":
        raise ConfigError(
            f"int8 embeddings need ONNX Runtime and a mean-pooled model ({model_dir}); "
            "install onnxruntime or use precision fp32"
        )
    return None
