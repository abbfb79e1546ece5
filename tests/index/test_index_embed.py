"""Embedders: the hashing fake (fast) and the real MiniLM fast path vs sentence-transformers encode (slow)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from ragtune.errors import ConfigError
from ragtune.index.embed import HashEmbedder, chunk_embed_text, get_embedder


def test_hash_embedder_is_deterministic_normalised_and_similarity_aware() -> None:
    emb = get_embedder("hash:64")
    assert emb is get_embedder("hash:64") and emb.dim == 64 and emb.model_id == "hash:64"
    vectors = emb.encode(["paid leave days", "paid leave days", "VPN intranet", ""])
    assert vectors.shape == (4, 64) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.array_equal(vectors[0], vectors[1])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert np.array_equal(HashEmbedder(64).encode(["paid leave days"])[0], vectors[0])  # stable across instances
    with pytest.raises(ConfigError, match="hash:x"):
        get_embedder("hash:x")
    assert chunk_embed_text("Title", "body") == "Title body" and chunk_embed_text("", "body") == "body"


@pytest.mark.slow
def test_minilm_direct_path_matches_sentence_transformers() -> None:
    emb = get_embedder("bundled")
    texts = ["How many days of paid leave?", "Connect to the VPN first, then open the intranet portal."]
    direct = emb.encode(texts)  # small batch: the ONNX Runtime query path (or torch direct without it)
    reference = emb._st.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert direct.shape == (2, 384)
    assert np.allclose(direct, reference, atol=1e-5)
    assert np.allclose(emb._encode_direct(texts), reference, atol=1e-5)  # the torch fallback agrees too
    if importlib.util.find_spec("onnxruntime"):
        assert emb._onnx_query_encoder() is not None  # MiniLM is mean-pooled: the fast path must be taken
    many = emb.encode(texts * 5)  # > DIRECT_MAX_TEXTS: sentence-transformers path
    assert np.allclose(many[:2], direct, atol=1e-5)
