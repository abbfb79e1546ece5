"""`ragtune ask` through the CLI: tiny random LM + hashing-embedder index (fast); the bundled model (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragtune.cli import build_app
from ragtune.errors import InputError

DOCS = [
    ("leave", "Leave policy", "Employees get thirty days of paid leave per year."),
    ("vpn", "VPN", "Connect to the VPN before opening the intranet."),
    ("eiffel", "Eiffel Tower", "The Eiffel Tower was finished in 1889 for the world fair in Paris."),
]


@pytest.fixture(scope="module")
def hash_index(tmp_path_factory) -> Path:
    from ragtune.config import EmbedConfig, IndexConfig
    from ragtune.index import Index
    from ragtune.types import Document

    path = tmp_path_factory.mktemp("ask") / "ix"
    index = Index.create(path, IndexConfig(embed=EmbedConfig(model="hash")))
    index.add_documents([Document(doc_id=d, title=t, text=x) for d, t, x in DOCS])
    return path


def test_ask_json_shape(hash_index, tiny_lm_dir):
    result = CliRunner().invoke(
        build_app(),
        ["ask", "How many days of paid leave?", "--index", str(hash_index), "--model", str(tiny_lm_dir), "-k", "2",
         "--max-new-tokens", "4", "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"answer", "citations", "timings"}
    assert set(data["timings"]) == {"retrieve_ms", "generate_ms"}
    assert len(data["citations"]) >= 1
    assert set(data["citations"][0]) >= {"doc_id", "title", "text", "score", "cited"}
    assert data["sources"][0]["doc_id"] == "leave"
    assert data["model"] == tiny_lm_dir.name


def test_ask_text_output_and_batch_file(hash_index, tiny_lm_dir, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "q1", "question": "VPN before intranet?"}\n\n{"question": "When was the tower finished?"}\n')
    result = CliRunner().invoke(
        build_app(),
        ["ask", "--questions", str(questions), "--index", str(hash_index), "--model", str(tiny_lm_dir),
         "--max-new-tokens", "3", "--json"],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["question"] for r in rows] == ["VPN before intranet?", "When was the tower finished?"]
    assert rows[0]["sources"][0]["doc_id"] == "vpn" and rows[1]["sources"][0]["doc_id"] == "eiffel"
    text = CliRunner().invoke(
        build_app(), ["ask", "When was the tower finished?", "--index", str(hash_index), "--model", str(tiny_lm_dir),
                      "--max-new-tokens", "3"],
    )
    assert text.exit_code == 0, text.output
    assert "Sources (" in text.stdout and "eiffel" in text.stdout


def test_closed_book_needs_no_index(tiny_lm_dir):
    result = CliRunner().invoke(
        build_app(), ["ask", "Who?", "--closed-book", "--model", str(tiny_lm_dir), "--max-new-tokens", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["citations"] == [] and data["sources"] == [] and data["timings"]["retrieve_ms"] == 0.0


def test_missing_index_is_a_clear_error(tiny_lm_dir):
    with pytest.raises(InputError, match="--index DIR is required"):
        CliRunner().invoke(build_app(), ["ask", "Who?", "--model", str(tiny_lm_dir)], catch_exceptions=False)
    with pytest.raises(InputError, match="no question"):
        CliRunner().invoke(build_app(), ["ask", "--closed-book"], catch_exceptions=False)


def test_read_questions_plain_lines(tmp_path):
    from ragtune.pipeline import read_questions

    path = tmp_path / "q.txt"
    path.write_text("First?\n\n  Second?  \n")
    assert read_questions(path) == (["1", "3"], ["First?", "Second?"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": "x"}\n')
    with pytest.raises(InputError, match="question"):
        read_questions(bad)


@pytest.mark.slow
def test_ask_with_bundled_model(hash_index):
    result = CliRunner().invoke(
        build_app(), ["ask", "When was the Eiffel Tower finished?", "--index", str(hash_index), "-k", "2",
                      "--max-new-tokens", "24", "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "1889" in data["answer"]
    assert data["citations"][0]["doc_id"] == "eiffel"
    assert data["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
