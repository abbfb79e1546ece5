"""Embedder tuning: pairs, hard negatives, split by document, atomic output with a manifest, clear bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.config import EmbedConfig, IndexConfig
from ragtune.errors import ConfigError, InputError
from ragtune.index import Index
from ragtune.index.bm25 import BM25Index
from ragtune.train.embedder_tuning import (
    MANIFEST,
    EmbedderTuneConfig,
    TrainPair,
    mine_negatives,
    sentence_pairs,
    split_by_document,
    tune_embedder,
    validation_candidates,
    validation_set,
)
from ragtune.types import Chunk, Document

NAMES = ["Maria Lopez", "John Smith", "Anna Berg", "Peter Novak", "Laura Kim", "Omar Haddad"]
CITIES = ["Boston", "Tallinn", "Lisbon", "Oslo", "Dublin", "Prague"]


def _docs(n: int) -> list[Document]:
    return [Document(doc_id=f"d{i}", title=f"Project {i}",
                     text=f"{NAMES[i % 6]} founded project {i} in {1950 + i} in {CITIES[i % 6]}. "
                          f"The team of project {i} has {10 + i} engineers.")
            for i in range(n)]


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-dimension mean-pooled sentence-transformers folder around a random 2-layer BERT."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny-st")
    words = sorted({w.strip(".").lower() for d in _docs(30) for w in f"{d.title} {d.text}".split()})
    (root / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "who", "when",
                                               "where", "what", "how", "many", "did", "does", "?"]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(root / "vocab.txt"))
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=64))
    bert.save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    transformer = models.Transformer(str(root / "bert"), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, models.Pooling(32, "mean"), models.Normalize()], device="cpu")
    model.save(str(root / "st"))
    return root / "st"


def _index(tmp_path: Path, n: int, dim: int = 32) -> Index:
    index = Index.create(tmp_path / "ix", IndexConfig(embed=EmbedConfig(model=f"hash:{dim}")))
    index.add_documents(_docs(n))
    return index


def test_negatives_skip_the_positive_document_and_near_duplicates() -> None:
    chunks = [Chunk(chunk_id="a#0", doc_id="a", text="falcon budget was 12 million"),
              Chunk(chunk_id="b#0", doc_id="b", text="falcon budget was 12 million"),  # near-duplicate of a
              Chunk(chunk_id="c#0", doc_id="c", text="the falcon team moved to oslo"),
              Chunk(chunk_id="a#1", doc_id="a", text="falcon budget review")]
    bm25 = BM25Index([c.text for c in chunks])
    (pair,) = mine_negatives([TrainPair("falcon budget", "a#0", "a")], chunks, bm25)
    assert pair.negative_id == "c#0"


def test_split_by_document_never_shares_a_document() -> None:
    pairs = [TrainPair(f"q{i}", f"d{i % 10}#0", f"d{i % 10}") for i in range(50)]
    train, val = split_by_document(pairs, 0.2, seed=3)
    assert len(train) + len(val) == 50 and {p.doc_id for p in train}.isdisjoint({p.doc_id for p in val})
    assert len({p.doc_id for p in val}) == 2 and split_by_document(pairs, 0.2, seed=3) == (train, val)


def test_tune_writes_a_loadable_folder_with_manifest(tiny_st: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    index = _index(tmp_path, 30)
    config = EmbedderTuneConfig(per_chunk=2, epochs=2, batch_size=4, val_fraction=0.2)
    result = tune_embedder(index, tmp_path / "emb", config, base=str(tiny_st))
    manifest = json.loads((tmp_path / "emb" / MANIFEST).read_text())
    assert result.pairs > 0 and result.val_pairs > 0 and 1 <= result.epochs_run <= 2
    assert manifest["base_embedder"] == str(tiny_st) and len(manifest["data_hash"]) == 16
    assert manifest["validation"]["recall@10_after"] >= manifest["validation"]["recall@10_before"]
    assert manifest["config"]["per_chunk"] == 2 and manifest["pairs"]["train"] == result.pairs
    assert SentenceTransformer(str(tmp_path / "emb"), device="cpu").encode(["who founded project 3"]).shape == (1, 32)
    assert not list(tmp_path.glob(".*"))


def test_the_cached_loss_gives_the_whole_batch_gradients() -> None:
    """mini_batch_size (GradCache) bounds memory only: the loss and gradients equal the whole batch's (bundled
    MiniLM; a random tiny model's gradients are too small to compare)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import CachedMultipleNegativesRankingLoss, MultipleNegativesRankingLoss

    from ragtune.models import resolve_embedder

    columns = [[f"who founded project {i}" for i in range(6)], [d.text for d in _docs(6)],
               [d.text for d in _docs(12)[6:]]]
    grads = []
    for make in (MultipleNegativesRankingLoss, lambda m: CachedMultipleNegativesRankingLoss(m, mini_batch_size=2)):
        model = SentenceTransformer(str(resolve_embedder("bundled")), device="cpu").eval()  # no dropout
        loss = make(model)([model.preprocess(c) for c in columns], torch.zeros(6))
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (whole, whole_grads), (cached, cached_grads) = grads
    assert cached == pytest.approx(whole, rel=1e-5) and len(whole_grads) == len(cached_grads) > 0
    scale = max(g.abs().max().item() for g in whole_grads)  # (a gradient that is 0 in theory, as the key bias's,
    assert max((a - b).abs().max().item() for a, b in zip(whole_grads, cached_grads)) <= 1e-4 * scale  # is noise)


def test_tune_with_the_cached_loss(tiny_st: Path, tmp_path: Path) -> None:
    index = _index(tmp_path, 30)
    config = EmbedderTuneConfig(per_chunk=2, epochs=1, batch_size=4, mini_batch_size=2, val_fraction=0.2)
    result = tune_embedder(index, tmp_path / "emb", config, base=str(tiny_st))
    assert result.epochs_run == 1 and json.loads((tmp_path / "emb" / MANIFEST).read_text())["config"]["mini_batch_size"] == 2
    with pytest.raises(ConfigError, match="mini_batch_size >= 0"):
        tune_embedder(index, tmp_path / "emb2", EmbedderTuneConfig(mini_batch_size=-1), base=str(tiny_st))


def test_bad_input_is_one_clear_error_and_writes_nothing(tiny_st: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="has 3 chunks; embedder tuning needs at least 20"):
        tune_embedder(_index(tmp_path / "small", 3), tmp_path / "emb", base=str(tiny_st))
    index = _index(tmp_path / "ok", 30)
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "who founded project 3", "chunk_id": "nope#0"}) + "\n")
    with pytest.raises(InputError, match="gold chunk id 'nope#0' is not in the index"):
        tune_embedder(index, tmp_path / "emb", qa_file=qa, base=str(tiny_st))
    with pytest.raises(InputError, match="has 32 dimensions, index .* has 64"):
        tune_embedder(_index(tmp_path / "wide", 30, dim=64), tmp_path / "emb",
                      EmbedderTuneConfig(batch_size=4), base=str(tiny_st))
    assert not (tmp_path / "emb").exists() and not list(tmp_path.glob(".emb*"))


def _scripted_recall(values: list[float | None]):
    """Validation recall as scripted (None: the run is killed there), so the epochs run are known."""
    left = iter(values)

    def recall(*args, **kwargs) -> float:
        value = next(left)
        if value is None:
            raise RuntimeError("killed")
        return value

    return recall


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return {f"{path.relative_to(folder)}:{name}": tensor for path in sorted(folder.rglob("*.safetensors"))
            for name, tensor in load_file(str(path)).items()}


def test_resume_continues_from_the_last_finished_epoch_as_if_never_stopped(tiny_st: Path, tmp_path: Path,
                                                                          monkeypatch) -> None:
    import torch

    from ragtune.errors import ConfigError
    from ragtune.train import embedder_tuning

    index = _index(tmp_path, 30)
    config = EmbedderTuneConfig(per_chunk=2, epochs=3, batch_size=4, val_fraction=0.2)
    monkeypatch.setattr(embedder_tuning, "recall_at_k", _scripted_recall([0.1, 0.2, 0.3, 0.4]))
    straight = tune_embedder(index, tmp_path / "straight", config, base=str(tiny_st))
    assert straight.history == [0.1, 0.2, 0.3, 0.4] and straight.epochs_run == 3

    monkeypatch.setattr(embedder_tuning, "recall_at_k", _scripted_recall([0.1, 0.2, None]))  # killed in epoch 2's check
    with pytest.raises(RuntimeError, match="killed"):
        tune_embedder(index, tmp_path / "emb", config, base=str(tiny_st))
    checkpoint = tmp_path / ".emb.checkpoint.pt"
    assert checkpoint.is_file() and not (tmp_path / "emb").exists()
    with pytest.raises(ConfigError, match="other config"):
        tune_embedder(index, tmp_path / "emb", EmbedderTuneConfig(per_chunk=2, epochs=4, batch_size=4,
                                                                  val_fraction=0.2), base=str(tiny_st), resume=True)
    monkeypatch.setattr(embedder_tuning, "recall_at_k", _scripted_recall([0.3, 0.4]))  # epochs 2 and 3 only
    resumed = tune_embedder(index, tmp_path / "emb", config, base=str(tiny_st), resume=True)
    assert resumed.history == [0.1, 0.2, 0.3, 0.4] and resumed.epochs_run == 3 and not checkpoint.exists()
    assert json.loads((tmp_path / "emb" / MANIFEST).read_text())["validation"]["per_epoch"] == [0.1, 0.2, 0.3, 0.4]
    before, after = _weights(tmp_path / "straight"), _weights(tmp_path / "emb")
    assert before.keys() == after.keys() and before
    assert all(torch.allclose(before[name], after[name], atol=1e-6) for name in before)


def test_validation_ranks_among_every_gold_chunk_and_a_seeded_sample_of_the_rest():
    chunks = [Chunk(chunk_id=f"c{i}", doc_id=f"d{i}", text=f"text {i}") for i in range(50)]
    val = [TrainPair("q1", "c40", "d40"), TrainPair("q2", "c7", "d7")]
    picked = validation_candidates(chunks, val, 10, seed=3)
    ids = [c.chunk_id for c in picked]
    assert len(ids) == 10 == len(set(ids)) and {"c7", "c40"} <= set(ids)
    assert ids == [c.chunk_id for c in validation_candidates(chunks, val, 10, seed=3)]  # seeded
    assert ids != [c.chunk_id for c in validation_candidates(chunks, val, 10, seed=4)]
    assert validation_candidates(chunks, val, 0, seed=3) == chunks  # 0: all chunks
    assert validation_candidates(chunks, val, 50, seed=3) == chunks  # a corpus no larger: all chunks


def test_sentence_queries_are_taken_out_of_their_positive():
    chunk = Chunk(chunk_id="d1#0", doc_id="d1", title="Oxygen",
                  text="Oxygen is a chemical element with symbol O. It was isolated by Scheele in 1771. Short one.")
    pairs = sentence_pairs([chunk], 5, seed=0)
    assert [p.query for p in pairs] == ["Oxygen is a chemical element with symbol O.",
                                        "It was isolated by Scheele in 1771."]  # "Short one." is under 6 words
    assert pairs[0].positive_text == "Oxygen It was isolated by Scheele in 1771. Short one."
    assert all(p.query not in p.positive_text and p.chunk_id == "d1#0" for p in pairs)
    one = Chunk(chunk_id="d2#0", doc_id="d2", text="A single sentence of enough words here.")
    assert sentence_pairs([one], 2, seed=0) == [] and sentence_pairs([chunk], 0, seed=0) == []


def test_sentence_queries_alone_validate_against_their_chunk_without_them() -> None:
    chunks = [Chunk(chunk_id=f"d{i}#0", doc_id=f"d{i}", text=f"Sentence one of {i} here now. Sentence two of {i} "
                    "here now.") for i in range(6)]
    text_of = {c.chunk_id: c.text for c in chunks}
    val = sentence_pairs(chunks[:1], 1, seed=0)
    queries, gold, texts = validation_set(chunks, val, text_of, 4, seed=0)
    assert queries == [val[0].query] and gold == [0] and texts[0] == val[0].positive_text
    assert len(texts) == 4 and chunks[0].text not in texts  # the query's own chunk (verbatim) is no candidate
    # questions present: they alone validate, against whole chunks
    question = TrainPair("who wrote two?", "d3#0", "d3")
    queries, gold, texts = validation_set(chunks, [*val, question], text_of, 0, seed=0)
    assert queries == ["who wrote two?"] and texts[gold[0]] == chunks[3].text and len(texts) == 6


def test_tune_on_sentence_queries_only(tiny_st: Path, tmp_path: Path) -> None:
    index = _index(tmp_path, 30)
    config = EmbedderTuneConfig(per_chunk=0, sentence_queries=1, epochs=1, batch_size=4, val_fraction=0.2)
    result = tune_embedder(index, tmp_path / "emb", config, base=str(tiny_st))
    manifest = json.loads((tmp_path / "emb" / MANIFEST).read_text())
    assert result.pairs > 0 and result.val_pairs > 0 and manifest["validation"]["queries"] == result.val_pairs
    with pytest.raises(ConfigError, match="not both 0"):
        tune_embedder(index, tmp_path / "emb2", EmbedderTuneConfig(per_chunk=0), base=str(tiny_st))


@pytest.mark.parametrize("backend", ["milvus", "postgres"])
def test_tune_from_a_store_index(backend: str, tiny_st: Path, tmp_path: Path) -> None:
    """finetune-embedder on milvus:// or postgresql:// (it once asked the store's snapshot for a BM25 it lacks)."""
    from tests.store.conftest import drop_location, fresh_location

    from ragtune.index import HashEmbedder

    uris = [fresh_location(backend, tmp_path / "a"), fresh_location(backend, tmp_path / "b")]
    try:
        for uri, dim in zip(uris, (32, 16)):
            Index.open_or_create(uri, IndexConfig(embed=EmbedConfig(model=f"hash:{dim}")),
                                 embedder=HashEmbedder(dim)).add_documents(_docs(30))
        config = EmbedderTuneConfig(per_chunk=2, epochs=1, batch_size=4, val_fraction=0.2)
        folder = tune_embedder(_index(tmp_path, 30), tmp_path / "from-folder", config, base=str(tiny_st))
        store = tune_embedder(Index.open(uris[0]), tmp_path / "emb", config, base=str(tiny_st))
        manifest = json.loads((tmp_path / "emb" / MANIFEST).read_text())
        assert manifest["source_index"] == uris[0] and (store.pairs, store.val_pairs) == (folder.pairs, folder.val_pairs)
        with pytest.raises(InputError, match="has 32 dimensions, index .*://.* has 16"):
            tune_embedder(Index.open(uris[1]), tmp_path / "emb2", config, base=str(tiny_st))
        assert not (tmp_path / "emb2").exists()
    finally:
        for uri in uris:
            drop_location(uri)
