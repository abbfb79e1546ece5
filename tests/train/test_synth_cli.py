"""`ragtune synth` on a small hash-embedded index (no model loaded with --rules-only); and the slow real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragtune.cli import build_app
from ragtune.config import EmbedConfig, IndexConfig
from ragtune.types import Document

DOCS = [
    Document(doc_id="lab", text="The Brinewell Laboratory opened in 1997. It was designed by the architect Halvard Stenmoe."),
    Document(doc_id="conduct", text="The ombudsperson is Hettie Brannagh, who is not employed by any team. "
             "Every concern is acknowledged within 5 working days."),
]


@pytest.fixture()
def index_dir(tmp_path: Path) -> Path:
    from ragtune.index import Index

    path = tmp_path / "index"
    Index.create(path, IndexConfig(embed=EmbedConfig(model="hash:64"))).add_documents(DOCS)
    return path


def test_synth_command_writes_qa_jsonl_and_counts(index_dir, tmp_path):
    out = tmp_path / "qa.jsonl"
    args = ["synth", "--index", str(index_dir), "--out", str(out), "--rules-only", "--paraphrases", "1", "--seed", "1"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["chunk_id"] for r in records} == {"lab#0", "conduct#0"}
    assert all(r["answer"] in r["context"] and r["question"].endswith("?") for r in records)
    assert f"wrote {len(records)} QA pairs from 2 chunks" in result.output
    assert "kept:" in result.output and "rejected:" in result.output
    first = out.read_bytes()
    assert CliRunner().invoke(build_app(), args).exit_code == 0
    assert out.read_bytes() == first  # deterministic


def test_synth_command_limit_and_missing_index(index_dir, tmp_path):
    out = tmp_path / "qa.jsonl"
    result = CliRunner().invoke(build_app(), ["synth", "--index", str(index_dir), "--out", str(out), "--rules-only",
                                              "--limit-chunks", "1"])
    assert result.exit_code == 0, result.output
    assert "from 1 chunks" in result.output
    from ragtune.errors import NotBuiltError

    missing = CliRunner().invoke(build_app(), ["synth", "--index", str(tmp_path / "nope"), "--out", str(out)])
    assert missing.exit_code != 0 and isinstance(missing.exception, NotBuiltError)


@pytest.mark.slow
def test_synth_with_the_bundled_model_on_the_sample_handbook():
    """Real SmolLM2 on ~5 handbook chunks: every kept pair passes the filters, answers are spans of their chunk."""
    from ragtune.config import GenerateConfig
    from ragtune.generate import load_generator
    from ragtune.config import ChunkConfig
    from ragtune.ingest import WhitespaceTokenCounter, chunk_documents, load_documents
    from ragtune.train.synth import check_pair, synthesize_qa

    handbook = Path(__file__).resolve().parents[2] / "src" / "ragtune" / "sample" / "handbook"
    docs = load_documents([handbook / "policies"]).documents[:5]
    chunks = chunk_documents(docs, ChunkConfig(chunk_tokens=120, overlap_tokens=16), WhitespaceTokenCounter())[:5]
    generator = load_generator(GenerateConfig(model="bundled"))
    by_id = {c.chunk_id: c for c in chunks}
    llm = synthesize_qa(chunks, generator, per_chunk=2, seed=0, questions="llm")
    auto = synthesize_qa(chunks, generator, per_chunk=2, paraphrases=1, seed=0)
    assert llm.examples and all(e.metadata["method"] == "llm" for e in llm.examples), llm.rejected
    assert len(auto.examples) >= 3, auto.rejected
    for example in llm.examples + auto.examples:
        chunk = by_id[example.chunk_id]
        start = example.metadata["answer_start"]
        assert chunk.text[start : start + len(example.answer)] == example.answer
        assert check_pair(example.question, example.answer, chunk.text) is None
