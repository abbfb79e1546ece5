"""The tuned-retriever arms (rag_tr, raft_tr) in `ragtune compare`: they answer from the index re-embedded with a
tuned embedder (RUN.partial/index_tr), trained by --train or given by --tuned-embedder. A fake embedder stands in
for the tuned folder: it gives every text the same vector, so its top hit is the same chunk for every question."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragtune.cli import main
from ragtune.errors import ConfigError, InputError
from ragtune.index import Index
from ragtune.index import embed as embed_module
from ragtune.types import Document
from ragtune.workflows.compare import CompareConfig, run_compare

DOCS = [
    Document("harbour.md", "The harbour master is Ilse Varga. The harbour opened in 1952.", "Harbour"),
    Document("library.md", "The library holds 4,200 charts. It is run by Tomas Brede.", "Library"),
    Document("kitchen.md", "The kitchen serves soup on Tuesdays. The chef is Anwen Lark.", "Kitchen"),
]
QUESTIONS = [
    {"id": "a", "question": "Who is the harbour master?", "answer": "Ilse Varga", "doc_id": "harbour.md"},
    {"id": "b", "question": "How many charts does the library hold?", "answer": "4,200", "doc_id": "library.md"},
    {"id": "c", "question": "Who is the chef?", "answer": "Anwen Lark", "doc_id": "kitchen.md"},
]


class SameVectorEmbedder:
    """Every text gets one vector: dense retrieval ranks all chunks alike (a retriever unlike the hashing one)."""

    model_id = "same:8"
    dim = 8
    precision = "fp32"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []  # the texts of each call

    def encode(self, texts: list[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        self.calls.append(list(texts))
        return np.full((len(texts), self.dim), 1 / np.sqrt(self.dim), dtype=np.float32)


def _register(monkeypatch, folder: Path) -> SameVectorEmbedder:
    """`folder` loads as the fake (get_embedder's per-process cache is keyed by the name the index records)."""
    folder.mkdir(parents=True, exist_ok=True)
    fake = SameVectorEmbedder()
    monkeypatch.setitem(embed_module._CACHE, str(folder.resolve()), fake)
    return fake


@pytest.fixture()
def setup(corpus) -> dict:
    return corpus(DOCS, QUESTIONS)


def _config(setup: dict, **changes) -> CompareConfig:
    base = dict(index=setup["index"], questions=setup["questions"], out=str(setup["tmp"] / "run"),
                arms=("rag", "rag_tr"), model=setup["model"], max_new_tokens=4, k=1, mode="dense")
    return CompareConfig(**{**base, **changes})


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]


def test_tr_arm_answers_from_the_index_re_embedded_with_the_tuned_embedder(setup, monkeypatch):
    emb = setup["tmp"] / "emb"
    _register(monkeypatch, emb)
    (emb / "ragtune_embedder.json").write_text(json.dumps(
        {"base_embedder": "bundled", "seconds": 30.0, "validation": {"recall@10_before": 0.5, "recall@10_after": 0.7}}))
    run = run_compare(_config(setup, tuned_embedder=str(emb)))
    results = json.loads((run / "results.json").read_text())
    rows = _rows(run)
    tuned_docs = {r["citations"][0]["doc_id"] for r in rows if r["arm"] == "rag_tr"}
    assert len(tuned_docs) == 1  # the fake ranks every chunk alike: one chunk for every question
    assert sorted(r["citations"][0]["doc_id"] for r in rows if r["arm"] == "rag") == sorted(q["doc_id"] for q in QUESTIONS)
    assert results["arms"]["rag"]["metrics"]["retrieval_recall_at_k"] == pytest.approx(1.0)
    assert results["arms"]["rag_tr"]["metrics"]["retrieval_recall_at_k"] == pytest.approx(1 / 3)
    tuned = results["setup"]["tuned_retriever"]
    assert tuned["embedder"] == str(emb.resolve()) and tuned["base_embedder"] == "bundled"
    assert tuned["validation"] == {"recall@10_before": 0.5, "recall@10_after": 0.7}
    assert tuned["reindex"].startswith("ragtune reindex ") and "index" not in tuned
    arms = results["setup"]["arms"]
    assert arms["rag_tr"]["embedder"] == str(emb.resolve()) and "embedder" not in arms["rag"]
    assert arms["rag_tr"]["train_s"] == 30.0 and arms["rag"]["train_s"] == 0.0  # the embedder's training is priced
    assert results["arms"]["rag_tr"]["metrics"]["training_usd"] > 0
    assert "training" not in results["setup"]  # nothing was trained in this run
    assert not (run / "index_tr").exists()  # scratch: it names RUN.partial's paths
    assert Index.open(setup["index"]).config.embed.model == "hash:64"  # the user's index is untouched


def test_freshness_questions_go_to_a_re_embedded_copy_too(setup, monkeypatch):
    emb = setup["tmp"] / "emb"
    updates = setup["tmp"] / "updates"
    (updates / "docs").mkdir(parents=True)
    (updates / "docs" / "harbour.md").write_text("The harbour master is Petra Solm. The harbour opened in 1952.")
    (updates / "questions.jsonl").write_text(json.dumps(
        {"id": "f1", "question": "Who is the harbour master?", "answer": "Petra Solm", "doc_id": "harbour.md"}) + "\n")
    fake = _register(monkeypatch, emb)
    run = run_compare(_config(setup, tuned_embedder=str(emb), freshness=str(updates), mode="bm25"))
    fresh = [r for r in _rows(run) if r["freshness"] and r["arm"] == "rag_tr"]  # BM25 over the tuned copy's chunks:
    assert len(fresh) == 1 and "Petra Solm" in fresh[0]["citations"][0]["text"]  # it holds the update
    index_texts, fresh_texts = fake.calls[:2]  # the index, then its updated copy, re-embedded with the fake
    assert len(index_texts) == len(fresh_texts) == 3
    assert any("Ilse Varga" in t for t in index_texts) and any("Petra Solm" in t for t in fresh_texts)
    assert not (run / "fresh_index_tr").exists()


def test_tr_arm_without_an_embedder_or_train_is_one_usage_line_before_any_work(setup, capsys):
    with pytest.raises(ConfigError, match="arm\\(s\\) rag_tr retrieve with a tuned embedder: pass --tuned-embedder"):
        run_compare(_config(setup))
    with pytest.raises(ConfigError, match="--tuned-embedder is for the tuned-retriever arms"):
        run_compare(_config(setup, arms=("rag",), tuned_embedder=str(setup["tmp"])))
    with pytest.raises(ConfigError, match="keeps no entity graph"):
        run_compare(_config(setup, tuned_embedder=str(setup["tmp"]), mode="graph-local"))
    with pytest.raises(InputError, match="embedder tuning needs at least 20"):  # --train: can it be tuned at all
        run_compare(_config(setup, train=True))
    assert not (setup["tmp"] / "run").exists() and not (setup["tmp"] / "run.partial").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--index", setup["index"], "--questions", setup["questions"], "--out",
              str(setup["tmp"] / "run"), "--arms", "rag,rag_tr", "--model", setup["model"]])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_.value.code == 2
    assert lines == ["error: arm(s) rag_tr retrieve with a tuned embedder: pass --tuned-embedder EMB_DIR "
                     "(ragtune finetune-embedder) or --train"]


def test_resume_reuses_the_re_embedded_index(setup, monkeypatch):
    emb = setup["tmp"] / "emb"
    fake = _register(monkeypatch, emb)
    real_answer = __import__("ragtune.pipeline", fromlist=["answer_from_hits"]).answer_from_hits
    calls = {"n": 0}

    def crashing_answer(questions, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")
        return real_answer(questions, *args, **kwargs)

    monkeypatch.setattr("ragtune.pipeline.answer_from_hits", crashing_answer)
    with pytest.raises(RuntimeError):
        run_compare(_config(setup, tuned_embedder=str(emb), batch_size=8))
    index_tr = setup["tmp"] / "run.partial" / "index_tr"
    assert Index.open(index_tr).config.embed.model == str(emb.resolve()) and len(Index.open(index_tr)) == 3
    encoded = len(fake.calls)

    def no_reembedding(*args, **kwargs):
        raise AssertionError("a resumed run re-embedded the index again")

    monkeypatch.setattr("ragtune.index.reembed.reembed_index", no_reembedding)
    run = run_compare(_config(setup, tuned_embedder=str(emb), batch_size=8, resume=True))
    chunk_texts = set(fake.calls[0])  # the re-embedding: one text per chunk, as the index embeds them
    assert len(chunk_texts) == 3 and len(fake.calls) > encoded  # rag_tr answered again (queries, passage cuts)
    assert not any(chunk_texts & set(texts) for texts in fake.calls[1:])  # and no chunk was embedded again
    assert json.loads((run / "results.json").read_text())["setup"]["tuned_retriever"]["reembed_s"] == 0.0
    assert len(_rows(run)) == 2 * len(QUESTIONS)


def test_train_trains_the_embedder_into_the_run_and_prices_it(setup, monkeypatch):
    from ragtune.train import embedder_tuning

    trained = []

    def fake_tune(index, out, config, **kwargs):
        trained.append(config)
        _register(monkeypatch, Path(out))
        (Path(out) / embedder_tuning.MANIFEST).write_text(json.dumps(
            {"base_embedder": "bundled", "seconds": 12.5, "pairs": {"train": 40, "validation": 4}, "epochs_run": 1,
             "validation": {"recall@10_before": 0.4, "recall@10_after": 0.6}}))

    monkeypatch.setattr(embedder_tuning, "check_tunable", lambda index: "bundled")
    monkeypatch.setattr(embedder_tuning, "tune_embedder", fake_tune)
    monkeypatch.chdir(setup["tmp"])  # a relative --out: the embedder trained in run.partial is recorded in run
    run = run_compare(_config(setup, arms=("rag", "rag_tr"), train=True, seed=3, out="run")).resolve()
    assert [c.seed for c in trained] == [3] and trained[0].epochs == embedder_tuning.EmbedderTuneConfig().epochs
    setup_json = json.loads((run / "results.json").read_text())["setup"]
    training = setup_json["training"]["embedder"]
    assert training == {"path": str(run / "adapters" / "embedder"), "train_s": 12.5, "examples": 40, "epochs": 1,
                        "metrics": {"recall@10_before": 0.4, "recall@10_after": 0.6}}
    assert setup_json["arms"]["rag_tr"]["embedder"] == str(run / "adapters" / "embedder")
    assert setup_json["arms"]["rag_tr"]["train_s"] == 12.5
    assert (run / "adapters" / "embedder" / embedder_tuning.MANIFEST).is_file()


def test_the_tuned_index_keeps_the_source_index_precision(tmp_path):
    from ragtune.config import EmbedConfig, IndexConfig
    from ragtune.errors import ConfigError
    from ragtune.index import HashEmbedder, Index
    from ragtune.types import Document
    from ragtune.workflows.compare import _reembedded

    class QuantisedHash(HashEmbedder):
        def __init__(self) -> None:
            super().__init__(64)
            self.precision, self.int8_graph = "int8", 3

    config = IndexConfig(embed=EmbedConfig(model="hash:64", precision="int8"))
    source = Index.create(tmp_path / "src", config, embedder=QuantisedHash())
    source.add_documents([Document("a", "paid leave")])
    with pytest.raises(ConfigError, match="no int8 variant"):  # asked for at int8, which the hash embedder lacks
        _reembedded(source, tmp_path / "tr", "hash:32")
    assert not (tmp_path / "tr").exists()
