"""`ragtune ingest` -> `search` -> `delete` end to end through the CLI (hashing embedder; real model when slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragtune.cli import build_app
from ragtune.errors import InputError


def _corpus(root: Path) -> Path:
    docs = root / "docs"
    (docs / "policies").mkdir(parents=True)
    (docs / "policies" / "leave.md").write_text("# Leave\n\nEmployees get thirty days of paid leave per year.\n")
    (docs / "vpn.txt").write_text("Connect to the VPN before opening the intranet.\n")
    (docs / "empty.txt").write_text("")
    (docs / "blob.txt").write_bytes(b"\x00\x01\x02binary\x00")
    return docs


def test_ingest_search_delete(tmp_path: Path) -> None:
    runner, app = CliRunner(), build_app()
    docs, index = _corpus(tmp_path), str(tmp_path / "ix")
    result = runner.invoke(app, ["ingest", str(docs), "--index", index, "--embedder", "hash", "--chunk-tokens", "64", "--overlap", "8"])
    assert result.exit_code == 1, result.output  # two bad files were skipped
    assert "2 added, 0 replaced, 0 unchanged" in result.output
    assert "empty.txt" in result.output and "blob.txt" in result.output

    (docs / "empty.txt").unlink()
    (docs / "blob.txt").unlink()
    again = runner.invoke(app, ["ingest", str(docs), "--index", index])
    assert again.exit_code == 0, again.output
    assert "0 added, 0 replaced, 2 unchanged" in again.output

    for mode in ("dense", "bm25", "hybrid"):
        found = runner.invoke(app, ["search", "paid leave days", "--index", index, "-k", "2", "--mode", mode, "--json"])
        assert found.exit_code == 0, found.output
        hits = json.loads(found.output)
        assert hits[0]["rank"] == 1 and hits[0]["doc_id"].endswith("leave.md")
    doc_id = hits[0]["doc_id"]
    text = runner.invoke(app, ["search", "VPN", "--index", index, "--filter", f"doc_id={doc_id}"])
    assert text.exit_code == 0 and doc_id in text.output and "vpn.txt" not in text.output

    deleted = runner.invoke(app, ["delete", doc_id, "--index", index])
    assert deleted.exit_code == 0 and "1 document(s)" in deleted.output
    after = json.loads(runner.invoke(app, ["search", "paid leave days", "--index", index, "--json"]).output)
    assert all(h["doc_id"] != doc_id for h in after)
    with pytest.raises(InputError):  # main() turns this into one line and exit code 2
        runner.invoke(app, ["delete", "nope", "--index", index], catch_exceptions=False)


SAMPLE = Path(__file__).resolve().parents[2] / "src" / "ragtune" / "sample" / "handbook"


@pytest.mark.slow
def test_real_embedder_on_sample_handbook(tmp_path: Path) -> None:
    if not SAMPLE.is_dir():
        pytest.skip(f"sample corpus not found at {SAMPLE}")
    runner, app = CliRunner(), build_app()
    index = str(tmp_path / "ix")
    result = runner.invoke(app, ["ingest", str(SAMPLE), "--index", index])
    assert result.exit_code == 0, result.output
    found = runner.invoke(app, ["search", "vacation days", "--index", index, "--mode", "dense", "--json", "-k", "3"])
    hits = json.loads(found.output)
    assert len(hits) == 3 and hits[0]["score"] > hits[2]["score"] > 0


def test_eval_retrieval_on_tiny_beir(tmp_path: Path) -> None:
    from ragtune.config import EmbedConfig, IndexConfig
    from ragtune.index import Index

    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    corpus = [
        ("d1", "Leave", "Employees get thirty days of paid leave."),
        ("d2", "VPN", "Connect to the VPN before the intranet."),
        ("d3", "Lunch", "The canteen serves lunch at noon."),
    ]
    (beir / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in corpus)
    )
    (beir / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "paid leave days"}) + "\n" + json.dumps({"_id": "q2", "text": "canteen lunch"}) + "\n"
    )
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    index = tmp_path / "ix"
    Index.create(index, IndexConfig(embed=EmbedConfig(model="hash")))
    result = CliRunner().invoke(
        build_app(), ["eval", "retrieval", str(beir), "--index", str(index), "--mode", "bm25", "--mode", "hybrid", "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["bm25"]["ndcg@10"] == 1.0 and metrics["bm25"]["mrr@10"] == 1.0
    assert metrics["hybrid"]["recall@10"] == 1.0 and metrics["hybrid"]["n_queries"] == 2
    assert len(Index.open(index)) == 3
    clash = CliRunner().invoke(build_app(), ["eval", "retrieval", str(beir), "--index", str(index), "--chunk-tokens", "256"])
    assert clash.exit_code != 0 and "existing --index keeps its own chunking" in str(clash.exception)
    bad = CliRunner().invoke(build_app(), ["eval", "retrieval", str(beir), "--chunk-tokens", "64", "--overlap", "64"])
    assert bad.exit_code != 0 and "bad chunking options" in str(bad.exception)
