"""`reembed_index` / `ragtune reindex`: same chunks and documents, new vectors, atomic, source untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ragtune.cli import build_app, main
from ragtune.config import EmbedConfig, IndexConfig
from ragtune.errors import ConfigError, NotBuiltError
from ragtune.index import Index
from ragtune.index import manifest as mf
from ragtune.index.embed import HashEmbedder
from ragtune.index.reembed import reembed_index
from ragtune.types import Document

DOCS = [Document(doc_id=f"d{i}", title=f"T{i}", text=f"paid leave days {i} vpn portal intranet " * 3) for i in range(5)]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    index = Index.create(tmp_path / "src", IndexConfig(embed=EmbedConfig(model="hash:32")))
    index.add_documents(DOCS)
    index.delete_documents(["d1"])  # a dead row: not carried over
    return tmp_path / "src"


def test_reembed_keeps_chunks_and_documents_with_new_vectors(source: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in (source / mf.SEGMENTS).iterdir())
    stats = reembed_index(source, tmp_path / "out", "hash:64")
    old, new = Index.open(source), Index.open(tmp_path / "out")
    assert (stats.documents, stats.chunks, stats.dim, stats.embedder_id) == (4, len(old), 64, "hash:64")
    assert [c.chunk_id for c in new.chunks()] == [c.chunk_id for c in old.chunks()]
    assert [c.text for c in new.chunks()] == [c.text for c in old.chunks()]
    assert [d.doc_id for d in new.documents()] == [d.doc_id for d in old.documents()]
    assert new.config.embed.model == "hash:64" and new.config.chunk == old.config.chunk
    want = HashEmbedder(64).encode([f"{c.title} {c.text}" for c in old.chunks()])
    assert np.allclose(new.state.vectors, want)
    assert sorted(p.name for p in (source / mf.SEGMENTS).iterdir()) == before  # source untouched
    assert not list(tmp_path.glob(".*"))  # no temp folder left


def test_reembed_records_the_int8_graph_so_the_copy_takes_that_graph_only(source: Path, tmp_path: Path) -> None:
    class QuantisedHash(HashEmbedder):
        def __init__(self, int8_graph: int) -> None:
            super().__init__(64)
            self.precision, self.int8_graph = "int8", int8_graph

    stats = reembed_index(source, tmp_path / "q", "hash:64", "int8", embedder=QuantisedHash(3))
    manifest = mf.read_manifest(tmp_path / "q")
    assert (stats.precision, manifest.precision, manifest.int8_graph) == ("int8", "int8", 3)
    Index.open(tmp_path / "q", embedder=QuantisedHash(3)).add_documents([Document(doc_id="n", text="new text")])
    with pytest.raises(ConfigError, match="quantised graph format 3"):
        Index.open(tmp_path / "q", embedder=QuantisedHash(4)).add_documents([Document(doc_id="m", text="other")])


def test_reembed_refuses_a_used_target_and_leaves_nothing_on_failure(source: Path, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("keep")
    with pytest.raises(ConfigError, match="not empty"):
        reembed_index(source, tmp_path / "busy", "hash:64")
    with pytest.raises(NotBuiltError):
        reembed_index(tmp_path / "nope", tmp_path / "out", "hash:64")
    with pytest.raises(ConfigError):
        reembed_index(source, tmp_path / "out", "hash:x")  # bad embedder: fails before anything is written
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".*"))


def test_reindex_cli(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    result = CliRunner().invoke(build_app(), ["reindex", str(source), "--embedder", "hash:48", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "re-embedded 4 documents" in result.output and Index.open(tmp_path / "o").state.vectors.shape[1] == 48
    with pytest.raises(SystemExit) as exit_info:
        main(["reindex", str(source), "--embedder", "hash", "--out", str(tmp_path / "p"), "--precision", "int4"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "precision 'int4'" in err
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("config_json", [None, "{not json"])
def test_reindex_with_a_folder_that_is_no_model_is_one_line(source: Path, tmp_path: Path, config_json,
                                                            capsys: pytest.CaptureFixture) -> None:
    """Before: transformers' ValueError as a traceback (a folder without config.json, exit 1)."""
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    if config_json is not None:
        (folder / "config.json").write_text(config_json)
    with pytest.raises(SystemExit) as exit_info:
        main(["reindex", str(source), "--embedder", str(folder), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: embedding model folder '{folder}' could not be loaded (")
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o*"))
