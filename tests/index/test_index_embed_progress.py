"""The embedding bar moves per encode batch, not in steps of 512 chunks (issue #12 item 12)."""

from __future__ import annotations

import contextlib

import numpy as np

from ragtune.config import EmbedConfig, IndexConfig
from ragtune.index import Index
from ragtune.index import store as store_module
from ragtune.index.embed import HashEmbedder, encode_in_steps
from ragtune.retrieve import open_retriever
from ragtune.types import Document


def test_encode_in_steps_advances_per_batch_and_keeps_row_order() -> None:
    texts = [f"text {i} " + "word " * (i % 7) for i in range(150)]
    calls, advanced = [], []
    embedder = HashEmbedder(64)

    class Recording:
        dim, model_id = embedder.dim, embedder.model_id

        def encode(self, batch, batch_size=64):
            calls.append(len(batch))
            return embedder.encode(batch)

    vectors = encode_in_steps(Recording(), texts, 64, advanced.append)
    assert calls == [64, 64, 22] and advanced == [64, 64, 22]
    np.testing.assert_array_equal(vectors, embedder.encode(texts))


def test_index_embedding_bar_advances_by_encode_batch(tmp_path, monkeypatch) -> None:
    advanced: list[int] = []

    class Task:
        def advance(self, n=1):
            advanced.append(n)

    @contextlib.contextmanager
    def recording_task(description, total=None):
        yield Task()

    monkeypatch.setattr(store_module, "progress_task", recording_task)
    config = IndexConfig(embed=EmbedConfig(model="hash:64", batch_size=16))
    index = Index.open_or_create(tmp_path / "ix", config)
    index.add_documents([Document(f"d{i}", f"Document number {i} is about topic {i}.") for i in range(40)])
    assert advanced == [16, 16, 8]
    hits = open_retriever(index, "dense").retrieve(["Document number 7 topic 7"], k=1)[0]
    assert hits[0].chunk.doc_id == "d7"
