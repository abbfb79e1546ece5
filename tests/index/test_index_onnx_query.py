"""The ONNX export: same vectors as the PyTorch forward, cache keyed by the model files, safe fallbacks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ragtune.index import onnx_encoder
from ragtune.index.onnx_encoder import OnnxEncoder
from ragtune.index.onnx_query import export_path, export_query_graph, is_mean_pooled

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

def test_exported_graph_matches_torch_on_padded_batches(
    tiny_transformer: SimpleNamespace, torch_reference: Callable, tmp_path: Path
) -> None:
    graph = export_query_graph(tiny_transformer, tmp_path / "q.onnx")
    assert graph.exists() and not list(tmp_path.glob(".*.tmp"))  # atomic: no temp file left behind
    encoder = OnnxEncoder(tiny_transformer.tokenizer, graph, max_length=64)  # the raw, unfused export
    for texts in (["how many paid leave days"], ["vpn", "connect to the vpn first then open the intranet portal"]):
        got = encoder.encode(texts)
        want = torch_reference(tiny_transformer, texts)
        assert got.shape == want.shape and got.dtype == np.float32
        assert np.allclose(got, want, atol=1e-5)
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_export_path_is_keyed_by_model_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"a")
    first = export_path(model)
    assert first == export_path(model) and first.is_relative_to(tmp_path / "cache" / "onnx")
    (model / "weights.bin").write_bytes(b"ab")  # a changed model folder must not reuse the old graph
    assert export_path(model) != first


class Pooling:
    def __init__(self, mode: str):
        self.mode = mode

    def get_config_dict(self) -> dict:
        return {"pooling_mode": self.mode}


class Normalize:
    pass


def test_only_mean_pooled_normalised_pipelines_qualify(tiny_transformer: SimpleNamespace) -> None:
    assert is_mean_pooled([tiny_transformer, Pooling("mean"), Normalize()])
    assert not is_mean_pooled([tiny_transformer, Pooling("cls"), Normalize()])
    assert not is_mean_pooled([tiny_transformer, Pooling("mean")])  # no normalisation: vectors would differ


def test_loader_falls_back_when_switched_off_or_export_fails(
    tiny_transformer: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "model"
    model.mkdir()
    pipeline = [tiny_transformer, Pooling("mean"), Normalize()]
    monkeypatch.setattr(onnx_encoder, "_graph_in_child", lambda *_: None)  # no sentence-transformers folder here
    monkeypatch.setenv("RAGTUNE_QUERY_BACKEND", "torch")
    assert onnx_encoder.load_encoder(pipeline, model, 64) is None
    monkeypatch.setenv("RAGTUNE_QUERY_BACKEND", "auto")
    encoder = onnx_encoder.load_encoder(pipeline, model, 64, threads=1)
    assert encoder is not None and encoder.graph == export_path(model).with_name("encoder.fp32.onnx")

    def broken(*_args: object) -> Path:
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnx_encoder, "export_query_graph", broken)
    (model / "changed").write_text("x")  # new key: the loader must export again, and that fails
    assert onnx_encoder.load_encoder(pipeline, model, 64) is None
