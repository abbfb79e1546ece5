"""An engine that fuses hybrid search itself (Milvus's RRFRanker, PostgreSQL's one statement) ranks exactly as the
client-side fusion of its own dense and keyword rankings, ties included: equal fused scores break by the best
single rank, then by chunk id (ragtune.retrieve.rrf_fuse's rule). (Ties *within* one engine ranking, e.g. equal
BM25 scores, are ordered by the engine and may still differ from a folder index's row order.)"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from ragtune.store import StoreConfig, StoredDocument, open_store, with_collection
from ragtune.store.base import rrf_merge
from ragtune.types import Chunk

CONFIG = StoreConfig("hash:4", 4, {"chunk": {"chunk_tokens": 32}})


def _unit(*values: float) -> list[float]:
    v = np.asarray(values, dtype=np.float32)
    return list(v / np.linalg.norm(v))


@pytest.mark.parametrize("dense_first", ["a1", "a2"])
def test_native_hybrid_ties_break_as_client_side_rrf(engine_uri: str, dense_first: str) -> None:
    """a1 and a2 swap places between the rankings (1st/2nd dense, 2nd/1st keyword): equal RRF scores and best
    ranks, so the id decides (a1 first) whichever of them the dense ranking puts first."""
    store = open_store(with_collection(engine_uri, f"t_{uuid.uuid4().hex[:12]}"))
    try:
        store.write_config(CONFIG)
        keyword_first = "a2" if dense_first == "a1" else "a1"
        texts = {keyword_first: "salmon salmon salmon river", dense_first: "salmon in the sea and other fish",
                 "b": "mountain goats", "c": "river stones"}
        vectors = {dense_first: _unit(1, 0.1, 0, 0), keyword_first: _unit(1, 0.5, 0, 0), "b": _unit(0, 1, 0, 0),
                   "c": _unit(0, 0, 1, 0)}
        docs = [StoredDocument(d, f"h{d}", "", "", 1, {}) for d in texts]
        chunks = [Chunk(f"{d}#0", d, texts[d], "", 0, "", {}) for d in texts]
        store.replace_documents(docs, chunks, np.asarray([vectors[d] for d in texts], dtype=np.float32))
        query = np.asarray([_unit(1, 0, 0, 0)], dtype=np.float32)
        dense = store.dense_search(query, 20)[0]
        keyword = store.keyword_search(["salmon"], 20)[0]
        assert [h.chunk.doc_id for h in dense[:2]] == [dense_first, keyword_first]
        assert [h.chunk.doc_id for h in keyword[:2]] == [keyword_first, dense_first]
        for k in (1, 2, 4):
            got = store.hybrid_search(["salmon"], query, k, candidates=20)[0]
            want = rrf_merge(dense, keyword, k)
            assert [h.chunk.chunk_id for h in got] == [h.chunk.chunk_id for h in want]
            assert got[0].chunk.doc_id == "a1"
            assert np.allclose([h.score for h in got], [h.score for h in want], atol=1e-6)
    finally:
        store.drop()
        store.close()
