"""RAFT and context-SFT builders on a real index of the sample handbook (hash embedder: no model)."""

from __future__ import annotations

from pathlib import Path

import pytest

import ragtune

SAMPLE = Path(ragtune.__file__).parent / "sample"


@pytest.fixture(scope="module")
def handbook_index(tmp_path_factory):
    from ragtune.config import EmbedConfig, IndexConfig
    from ragtune.index import HashEmbedder, Index
    from ragtune.ingest import load_documents

    if not (SAMPLE / "handbook").is_dir() or not (SAMPLE / "questions.jsonl").is_file():
        pytest.skip("sample corpus not present")
    index = Index.create(tmp_path_factory.mktemp("raft") / "index", IndexConfig(embed=EmbedConfig(model="hash")),
                         embedder=HashEmbedder())
    index.add_documents(load_documents([SAMPLE / "handbook"]).documents)
    return index


def test_raft_on_the_sample_handbook(handbook_index):
    from ragtune.train import build_raft_examples, load_examples

    examples = [e for e in load_examples(SAMPLE / "questions.jsonl").examples if e.metadata.get("split") == "train"]
    built = build_raft_examples(examples, handbook_index, distractors=3, p_oracle=0.8, seed=0, quote=True,
                                context_sentences=0)
    assert len(built) >= 0.9 * len(examples)  # gold chunks are found by doc_id + evidence
    chunks = {c.chunk_id: c for c in handbook_index.chunks()}
    by_qid = {e.qid: e for e in examples}
    oracle_count = 0
    for b in built:
        example = by_qid[b.meta["qid"]]
        oracle = chunks[b.meta["oracle_chunk_id"]]
        assert oracle.doc_id == example.doc_id
        assert len(b.meta["chunk_ids"]) == 4
        if b.meta["oracle"]:
            oracle_count += 1
            n = b.meta["source_number"]
            assert b.meta["chunk_ids"][n - 1] == oracle.chunk_id
            assert b.target.startswith(f"Quote: [{n}] ") and b.target.endswith(f"Answer: {example.answer} [{n}]")
        else:
            assert oracle.chunk_id not in b.meta["chunk_ids"] and b.target == f"Answer: {example.answer}"
    assert oracle_count == round(0.8 * len(built))


def test_context_sft_and_training_modes(handbook_index):
    from ragtune.errors import ConfigError
    from ragtune.train import load_examples
    from ragtune.train.builders import build_training_set

    examples = load_examples(SAMPLE / "questions.jsonl").examples[:10]
    built = build_training_set(examples, "sft-context", handbook_index)
    assert len(built) == sum(1 + len(e.metadata.get("paraphrases", [])) for e in examples)
    assert all(b.target.endswith(" [1]") and "Sources:\n[1] " in b.messages[1]["content"] for b in built)
    assert len(build_training_set(examples, "raft", handbook_index)) == 10
    with pytest.raises(ConfigError, match="needs an index"):
        build_training_set(examples, "raft")
