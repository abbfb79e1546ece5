"""The ONNX Runtime document encoder: fp32 equals PyTorch, length batching keeps row order, int8 never mixes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ragtune.config import EmbedConfig, IndexConfig
from ragtune.errors import ConfigError
from ragtune.index import Index
from ragtune.index import manifest as mf
from ragtune.index.embed import HashEmbedder, get_embedder
from ragtune.index.onnx_encoder import OnnxEncoder, graph_for, length_batches
from ragtune.types import Document

TEXTS = [
    "vpn",
    "connect to the vpn first then open the intranet portal",
    "how many paid leave days",
    "the portal",
    "open the intranet portal first then connect to the vpn how many days",
]


def test_length_batches_cover_every_row_once_within_the_budgets() -> None:
    lengths = np.array([5, 40, 3, 40, 12, 7, 1, 30])
    batches = length_batches(lengths, batch_size=3, token_budget=80)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    assert rows.tolist() == sorted(range(len(lengths)), key=lambda i: -lengths[i])  # longest first, stable
    for batch in batches:
        assert 1 <= len(batch) <= 3 and len(batch) * lengths[batch].max() <= 80
    assert [len(b) for b in length_batches(np.array([500, 2]), batch_size=8, token_budget=100)] == [1, 1]


pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"tiny")
    return folder


def test_fp32_graph_equals_torch_in_input_order(
    tiny_transformer: SimpleNamespace, torch_reference: Callable, model_dir: Path
) -> None:
    graph = graph_for(tiny_transformer, model_dir, "fp32")
    assert graph.name == "encoder.fp32.onnx" and not list(graph.parent.glob(".*"))  # atomic: no temp files
    encoder = OnnxEncoder(tiny_transformer.tokenizer, graph, max_length=64, threads=2)
    got = encoder.encode(TEXTS, batch_size=2)  # several length-sorted batches, each padded to its own longest
    want = np.concatenate([torch_reference(tiny_transformer, [t]) for t in TEXTS])  # one by one: no padding
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-5
    assert graph_for(tiny_transformer, model_dir, "fp32") == graph  # cached: no second export


def test_int8_graph_is_close_but_separate(tiny_transformer: SimpleNamespace, model_dir: Path) -> None:
    fp32 = OnnxEncoder(tiny_transformer.tokenizer, graph_for(tiny_transformer, model_dir, "fp32"), 64)
    graph = graph_for(tiny_transformer, model_dir, "int8")
    import onnx

    ops = {node.op_type for node in onnx.load(str(graph)).graph.node}
    assert graph.name == "encoder.int8.onnx" and "DynamicQuantizeLinear" in ops  # int8 MatMuls, activations per batch
    nodes = onnx.load(str(graph)).graph.node
    integer = [node.name for node in nodes if node.op_type == "MatMulInteger"]
    layers = tiny_transformer.auto_model.config.num_hidden_layers
    assert len(integer) == 6 * (layers - 1) and not any("layer.0/" in name for name in integer)  # layer 1 stays fp32
    int8 = OnnxEncoder(tiny_transformer.tokenizer, graph, 64, precision="int8").encode(TEXTS)
    cosine = (int8 * fp32.encode(TEXTS)).sum(1)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5) and cosine.min() > 0.95
    with pytest.raises(ConfigError, match="precision 'int4'"):
        graph_for(tiny_transformer, model_dir, "int4")


def test_an_int8_query_vector_does_not_depend_on_the_queries_asked_with_it(tiny_transformer: SimpleNamespace,
                                                                             model_dir: Path) -> None:
    """The int8 graph quantises activations with one scale per run: batched, a text's vector moves with its batch
    partners, so a question retrieved differently asked alone (ask, serve) than in a batch (compare)."""
    int8 = OnnxEncoder(tiny_transformer.tokenizer, graph_for(tiny_transformer, model_dir, "int8"), 64, precision="int8")
    alone = np.concatenate([int8.encode([t]) for t in TEXTS])
    assert not np.array_equal(int8.encode(TEXTS, batch_size=64), alone)  # why queries go one at a time
    from ragtune.index.embed import Embedder

    embedder = Embedder.__new__(Embedder)  # the query path alone, around this graph
    embedder.precision, embedder._lock = "int8", threading.Lock()
    embedder._query_encoder, embedder._query_encoder_checked = int8, True
    assert np.array_equal(embedder.encode_queries(TEXTS), alone)
    assert np.array_equal(embedder.encode_queries(TEXTS[::-1])[::-1], alone)


class Int8Hash(HashEmbedder):
    """The hashing fake posing as a quantised embedder: what the index sees of precision and quantised graph."""

    def __init__(self, int8_graph: int = 3) -> None:
        super().__init__(64)
        self.model_id = "hash:64"
        self.precision = "int8"
        self.int8_graph = int8_graph


def test_quantised_index_records_precision_and_refuses_fp32(tmp_path: Path) -> None:
    config = IndexConfig(embed=EmbedConfig(model="hash:64", precision="int8"))
    index = Index.create(tmp_path / "ix", config, embedder=Int8Hash())
    index.add_documents([Document(doc_id="a", text="paid leave days")])
    assert mf.read_manifest(tmp_path / "ix").precision == "int8"
    with pytest.raises(ConfigError, match="holds int8 vectors; the embedder given is fp32"):
        Index.open(tmp_path / "ix", embedder=HashEmbedder(64))
    mixed = Index(tmp_path / "ix", config, embedder=HashEmbedder(64))
    with pytest.raises(ConfigError, match="holds int8 vectors; this embedder produces fp32"):
        mixed.add_documents([Document(doc_id="b", text="vpn portal")])
    assert mf.read_manifest(tmp_path / "ix").generation == 1 and len(Index.open(tmp_path / "ix", Int8Hash())) == 1
    with pytest.raises(ConfigError, match="no int8 variant"):
        get_embedder("hash:64", "int8")


def test_int8_vectors_of_another_quantised_graph_are_never_added(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = IndexConfig(embed=EmbedConfig(model="hash:64", precision="int8"))
    Index.create(tmp_path / "ix", config, embedder=Int8Hash(2)).add_documents([Document(doc_id="a", text="paid leave")])
    assert mf.read_manifest(tmp_path / "ix").int8_graph == 2
    with caplog.at_level("WARNING", logger="ragtune.index.store"):
        newer = Index.open(tmp_path / "ix", embedder=Int8Hash(3))  # still searchable, with a warning
    assert "int8 vectors of the quantised graph format 2" in caplog.text and "reindex" in caplog.text
    assert len(newer) == 1 and newer.state.vectors.shape == (1, 64)
    with pytest.raises(ConfigError, match="int8 vectors of the quantised graph format 2; this ragtune's int8 encoder"):
        newer.add_documents([Document(doc_id="b", text="vpn portal")])
    assert mf.read_manifest(tmp_path / "ix").generation == 1  # nothing written
    # a manifest from before the format was recorded reads as 0: not the same graph as any recorded one
    path = tmp_path / "ix" / mf.MANIFEST
    import json

    data = json.loads(path.read_text())
    del data["int8_graph"]
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="older quantised graph \\(format not recorded\\)"):
        Index.open(tmp_path / "ix", embedder=Int8Hash(3)).add_documents([Document(doc_id="b", text="vpn portal")])
    Index.open(tmp_path / "ix", embedder=Int8Hash(0)).add_documents([Document(doc_id="b", text="vpn portal")])
    assert len(Index.open(tmp_path / "ix", embedder=Int8Hash(0))) == 2


def test_embedding_cache_keeps_int8_and_fp32_vectors_apart() -> None:
    from ragtune.index.embed import vectors_id_of
    from ragtune.index.rechunk import EmbeddingCache

    cache, fp32, int8 = EmbeddingCache(), HashEmbedder(64), Int8Hash(3)
    cache.add(vectors_id_of(int8), ["vpn"], np.full((1, 64), 0.125, dtype=np.float32))
    assert vectors_id_of(int8) == "hash:64@int8:3" and vectors_id_of(fp32) == "hash:64"
    assert np.allclose(cache.encode(int8, ["vpn"]), 0.125) and cache.embedded == 0
    assert np.allclose(cache.encode(fp32, ["vpn"]), fp32.encode(["vpn"])) and cache.embedded == 1
    assert cache.encode(Int8Hash(2), ["vpn"]).shape == (1, 64) and cache.embedded == 2  # another graph: embedded anew


def test_old_manifest_without_precision_reads_as_fp32(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "ix", IndexConfig(embed=EmbedConfig(model="hash:64")))
    index.add_documents([Document(doc_id="a", text="paid leave days")])
    path = tmp_path / "ix" / mf.MANIFEST
    import json

    data = json.loads(path.read_text())
    del data["precision"]
    path.write_text(json.dumps(data))
    assert mf.read_manifest(tmp_path / "ix").precision == "fp32" and len(Index.open(tmp_path / "ix")) == 1


@pytest.mark.slow
def test_minilm_document_path_equals_sentence_transformers() -> None:
    emb = get_embedder("bundled")
    texts = [f"{t} number {i} " * (1 + i % 7) for i, t in enumerate(TEXTS * 6)]  # 30 texts of mixed lengths
    assert emb._onnx_document_encoder() is not None
    got = emb.encode(texts, batch_size=8)  # > DIRECT_MAX_TEXTS: the ONNX document path
    want = emb._st.encode(texts, batch_size=8, normalize_embeddings=True, convert_to_numpy=True)
    assert np.abs(got - want).max() <= 1e-5
    # released (the demo frees it before training: issue 15), it loads again on the next batch, same vectors
    first = emb._doc_encoder
    emb.release_batch_encoder()
    assert emb._doc_encoder is None
    again = emb.encode(texts, batch_size=8)
    assert emb._doc_encoder is not None and emb._doc_encoder is not first
    assert np.array_equal(again, got)


@pytest.mark.slow
def test_load_encoder_exports_in_a_child_process(
    tiny_transformer: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export's memory goes back to the OS with the child: this process never runs the exporter, and the
    graph the child wrote computes what the model does."""
    from sentence_transformers import SentenceTransformer, models

    from ragtune.index import onnx_encoder

    monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path / "cache"))
    hf = tmp_path / "hf"
    tiny_transformer.auto_model.save_pretrained(hf)
    tiny_transformer.tokenizer.save_pretrained(hf)
    folder = tmp_path / "st"
    SentenceTransformer(modules=[models.Transformer(str(hf)), models.Pooling(32, "mean"), models.Normalize()]).save(
        str(folder)
    )
    st = SentenceTransformer(str(folder), device="cpu")

    def not_here(*args: object) -> None:
        raise AssertionError("exported in the calling process")

    monkeypatch.setattr(onnx_encoder, "export_query_graph", not_here)
    monkeypatch.setattr(onnx_encoder, "_fuse", not_here)
    encoder = onnx_encoder.load_encoder(st, folder, 64)
    assert encoder is not None and onnx_encoder._graph_ready(folder, "fp32")
    want = st.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    assert np.abs(encoder.encode(TEXTS) - want).max() <= 1e-5


def test_export_traces_eager_attention_so_the_optimizer_fuses_it(
    tiny_transformer: SimpleNamespace, model_dir: Path
) -> None:
    """SDPA's trace (NaN guards around the softmax) left attention as loose MatMuls; the eager trace fuses into
    ONNX Runtime's Attention kernel. The model's own attention setting is left as it was."""
    import onnx

    model = tiny_transformer.auto_model
    model.set_attn_implementation("sdpa")
    graph = graph_for(tiny_transformer, model_dir, "fp32")
    ops = [node.op_type for node in onnx.load(str(graph)).graph.node]
    assert ops.count("Attention") == model.config.num_hidden_layers and "Softmax" not in ops
    assert model.config._attn_implementation == "sdpa"
