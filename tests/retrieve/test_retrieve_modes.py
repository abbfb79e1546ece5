"""Dense, BM25 and hybrid retrieval over a small index with the hashing fake embedder; RRF math; filters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig, RetrieveConfig
from ragtune.errors import ConfigError, InputError
from ragtune.index import Index
from ragtune.index.dense import DenseIndex, top_k_rows
from ragtune.index.metadata import MetadataIndex
from ragtune.retrieve import Retriever, build_retriever, open_retriever, rrf_fuse
from ragtune.retrieve.hybrid import convex_fuse
from ragtune.retrieve.filters import parse_filter_args
from ragtune.types import Chunk, Document

CONFIG = IndexConfig(embed=EmbedConfig(model="hash:128"), chunk=ChunkConfig(chunk_tokens=64, overlap_tokens=8))
MODES = ["dense", "bm25", "hybrid", "hybrid-convex"]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    docs = [
        Document(f"animal{i}", f"The {name} is an animal that lives on the farm and eats grass.", title=name,
                 metadata={"groups": ["all", "farm"], "year": 2000 + i})
        for i, name in enumerate(["cow", "sheep", "goat", "horse", "donkey", "pig"])
    ]
    docs.append(Document("policy", "Employees get thirty days of paid leave per year.", title="Leave policy",
                         metadata={"groups": ["hr"], "year": 2020}))
    docs.append(Document("vpn", "Connect to the VPN before opening the intranet.", title="VPN",
                         metadata={"groups": ["it"]}))
    index = Index.create(tmp_path_factory.mktemp("ix") / "ix", CONFIG)
    index.add_documents(docs)
    return index


@pytest.mark.parametrize("mode", MODES)
def test_modes_find_the_obvious_document(index: Index, mode: str) -> None:
    retriever = open_retriever(index, mode)
    assert isinstance(retriever, Retriever)
    hits = retriever.retrieve(["how many days of paid leave do employees get", "VPN intranet"], k=3)
    assert [h[0].chunk.doc_id for h in hits] == ["policy", "vpn"]
    assert [h.rank for h in hits[0]] == list(range(len(hits[0])))
    assert all(a.score >= b.score for a, b in zip(hits[0], hits[0][1:]))


@pytest.mark.parametrize("mode", MODES)
def test_filters_apply_before_ranking(index: Index, mode: str) -> None:
    # the farm animals outrank the leave policy for this query; with k=1 a post-filter would return nothing
    query = ["animal on the farm eats grass"]
    unfiltered = open_retriever(index, mode).retrieve(query, k=1)[0]
    assert unfiltered[0].chunk.doc_id.startswith("animal")
    hits = open_retriever(index, mode).retrieve(query, k=1, filters={"groups": ["hr", "it"]})[0]
    if mode == "bm25":  # BM25 returns only chunks sharing a term with the query
        assert [h.chunk.doc_id for h in hits] in (["policy"], ["vpn"], [])
    else:
        assert len(hits) == 1 and hits[0].chunk.doc_id in {"policy", "vpn"}
    by_year = open_retriever(index, mode).retrieve(query, k=10, filters={"year": "2003"})[0]  # text matches int 2003
    assert [h.chunk.doc_id for h in by_year] == ["animal3"]
    assert open_retriever(index, mode).retrieve(query, k=10, filters={"doc_id": "nope"})[0] == []


def test_list_metadata_intersects_and_fields_and() -> None:
    chunks = [
        Chunk("a#0", "a", "x", metadata={"groups": ["hr", "all"], "lang": "en"}),
        Chunk("b#0", "b", "x", metadata={"groups": ["it"], "lang": "en"}),
        Chunk("c#0", "c", "x", source="s.md", metadata={"lang": "fr"}),
    ]
    meta = MetadataIndex(chunks)
    assert meta.mask(None) is None
    assert meta.mask({"groups": ["all", "it"]}).tolist() == [True, True, False]
    assert meta.mask({"groups": "hr", "lang": "en"}).tolist() == [True, False, False]
    assert meta.mask({"source": "s.md"}).tolist() == [False, False, True]
    assert parse_filter_args(["groups=hr", "groups=it", "lang = en"]) == {"groups": ["hr", "it"], "lang": ["en"]}
    with pytest.raises(InputError, match="nokey"):
        parse_filter_args(["nokey"])


def test_rrf_fusion_math() -> None:
    fused = dict(rrf_fuse([[1, 2, 3], [3, 1]], [1.0, 0.5], rrf_k=60))
    assert fused[1] == pytest.approx(1 / 61 + 0.5 / 62)
    assert fused[2] == pytest.approx(1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 0.5 / 61)
    assert [item for item, _ in rrf_fuse([[1, 2, 3], [3, 1]], [1.0, 0.5], rrf_k=60)] == [1, 3, 2]
    # equal fused scores: the item with the better single rank wins, then the smaller id
    assert [i for i, _ in rrf_fuse([[5, 6], [6, 5]], [1.0, 1.0])] == [5, 6]
    with pytest.raises(ValueError):
        rrf_fuse([[1]], [1.0, 1.0])


def test_convex_fusion_math() -> None:
    # min-max per list: [0.9, 0.8, 0.1] -> [1, 0.875, 0]; [12, 2] -> [1, 0]; weights 3:1 -> 0.75, 0.25
    fused = dict(convex_fuse([([1, 2, 3], [0.9, 0.8, 0.1]), ([3, 1], [12.0, 2.0])], [3.0, 1.0]))
    assert fused == pytest.approx({1: 0.75, 2: 0.75 * 0.875, 3: 0.25})
    # the score gap counts, not only the order: RRF ranks 3 first (two good ranks), convex ranks 1 first
    lists = [([1, 3, 2, 4], [0.95, 0.30, 0.29, 0.28]), ([3, 2, 1, 4], [9.0, 8.9, 8.8, 0.5])]
    assert [i for i, _ in rrf_fuse([ids for ids, _ in lists], [1.0, 1.0])][0] == 3
    assert [i for i, _ in convex_fuse(lists, [1.0, 1.0])][0] == 1
    # one list, all scores equal: each gets 1; a weight of 0 drops its list's candidates; ties by best rank, id
    assert convex_fuse([([4, 5], [2.0, 2.0]), ([6], [1.0])], [1.0, 0.0]) == [(4, 1.0), (5, 1.0)]
    assert convex_fuse([([], []), ([7], [0.3])], [1.0, 1.0]) == [(7, 0.5)]
    with pytest.raises(ValueError):
        convex_fuse([([1], [1.0])], [1.0, 1.0])


@pytest.mark.parametrize("mode", ["hybrid", "hybrid-convex"])
def test_hybrid_weights_change_the_order(index: Index, mode: str) -> None:
    bm25_only = build_retriever(index, RetrieveConfig(mode=mode, dense_weight=0.0, bm25_weight=1.0))
    pure_bm25 = open_retriever(index, "bm25")
    query = ["paid leave for employees"]
    assert [h.chunk.chunk_id for h in bm25_only.retrieve(query, k=3)[0]] == [
        h.chunk.chunk_id for h in pure_bm25.retrieve(query, k=3)[0]
    ]


def test_bad_mode_and_empty_queries(index: Index) -> None:
    with pytest.raises(ConfigError, match="graph"):
        open_retriever(index, "graph")
    assert open_retriever(index, "hybrid").retrieve([], k=3) == []
    assert open_retriever(index, "bm25").retrieve(["zzzz qqqq"], k=3) == [[]]  # no known term: no hits


def test_top_k_rows_order_and_ties() -> None:
    rows, scores = top_k_rows(np.array([0.1, 0.9, 0.5, 0.9, -np.inf], dtype=np.float32), 3)
    assert rows.tolist() == [1, 3, 2] and scores.tolist() == pytest.approx([0.9, 0.9, 0.5])
    assert top_k_rows(np.array([-np.inf, 0.2]), 5)[0].tolist() == [1]


def test_hnsw_matches_exact_and_respects_filters(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((50, 32)).astype(np.float32)
    vectors = centers[rng.integers(0, 50, 3000)] + 0.5 * rng.standard_normal((3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:20] + 0.1
    exact = DenseIndex(vectors, backend="exact").search(queries, 10)
    ann = DenseIndex(vectors, cache_dir=tmp_path, key="k1", backend="hnsw")
    assert list(tmp_path.glob("*.faiss"))  # the graph is cached
    approx = ann.search(queries, 10)
    recall = np.mean([len(set(a[0]) & set(e[0])) / 10 for a, e in zip(approx, exact)])
    assert recall >= 0.95
    mask = np.zeros(3000, dtype=bool)
    mask[::2] = True  # broad filter: searched in the graph with an ID selector
    for rows, _ in ann.search(queries, 10, mask):
        assert len(rows) == 10 and np.all(rows % 2 == 0)
    reopened = DenseIndex(vectors, cache_dir=tmp_path, key="k1", backend="hnsw")
    assert [r[0].tolist() for r in reopened.search(queries, 5)] == [r[0].tolist() for r in ann.search(queries, 5)]


@pytest.mark.parametrize("mode", ["dense", "hybrid", "hybrid-convex"])
def test_queries_are_embedded_through_encode_queries(tmp_path: Path, mode: str) -> None:
    """An int8 embedder's encode_queries embeds each question alone (its batched vectors move with the batch);
    every mode that embeds questions must go through it, never through the document path."""
    from ragtune.index import HashEmbedder
    from ragtune.types import Document

    class QueriesApart(HashEmbedder):
        def __init__(self) -> None:
            super().__init__(64)
            self.asked: list[list[str]] = []
            self.documents = True

        def encode(self, texts, *args, **kwargs):
            assert self.documents, "questions went through the document path"
            return super().encode(texts, *args, **kwargs)

        def encode_queries(self, texts):
            self.asked.append(list(texts))
            return np.concatenate([super(QueriesApart, self).encode([t]) for t in texts])

    embedder = QueriesApart()
    index = Index.create(tmp_path / "ix", IndexConfig(embed=EmbedConfig(model="hash:64")), embedder=embedder)
    index.add_documents([Document("a", "kelp grows in the bay"), Document("b", "boats sail at dawn")])
    embedder.documents = False
    hits = open_retriever(index, mode).retrieve(["kelp bay", "boats dawn"], k=1)
    assert [h[0].chunk.doc_id for h in hits] == ["a", "b"] and embedder.asked == [["kelp bay", "boats dawn"]]
