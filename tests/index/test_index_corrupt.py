"""A damaged index file is one line naming the file (and line) and how to recover, exit 3 (issue #12 item 6)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ragtune.cli import main
from ragtune.config import EmbedConfig, IndexConfig
from ragtune.errors import IndexCorruptError, NotBuiltError
from ragtune.index import HashEmbedder, Index
from ragtune.index import manifest as mf
from ragtune.types import Document


def _build(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "ix"
    index = Index.create(path, IndexConfig(embed=EmbedConfig(model="hash")), embedder=HashEmbedder())
    index.add_documents([Document(f"d{i}", f"Document number {i} talks about owls.", title=f"D{i}") for i in range(4)])
    (name,) = mf.read_manifest(path).segments
    return path, name


def _bad_json_line(path: Path, name: str) -> None:
    seg = path / "segments" / f"{name}.chunks.jsonl"
    lines = seg.read_text().splitlines(keepends=True)
    lines[2] = '{"chunk_id": "d2#0", "text": \n'
    seg.write_text("".join(lines))


def _record_missing_fields(path: Path, name: str) -> None:
    seg = path / "segments" / f"{name}.chunks.jsonl"
    lines = seg.read_text().splitlines(keepends=True)
    lines[2] = json.dumps({"chunk_id": "d2#0"}) + "\n"
    seg.write_text("".join(lines))


def _binary_chunks(path: Path, name: str) -> None:
    (path / "segments" / f"{name}.chunks.jsonl").write_bytes(b"\xff\xfe\x00garbage")


def _garbage_npy(path: Path, name: str) -> None:
    (path / "segments" / f"{name}.vectors.npy").write_bytes(b"not numpy at all")


def _truncated_npy(path: Path, name: str) -> None:
    npy = path / "segments" / f"{name}.vectors.npy"
    npy.write_bytes(npy.read_bytes()[:200])


def _manifest_wrong_shape(path: Path, name: str) -> None:
    data = json.loads((path / "manifest.json").read_text())
    data["documents"]["d1"] = {"hash": "x"}
    (path / "manifest.json").write_text(json.dumps(data))


def _manifest_not_json(path: Path, name: str) -> None:
    (path / "manifest.json").write_text("{ half a manifest")


CASES: dict[str, tuple[Callable[[Path, str], None], str]] = {
    "chunks line not JSON": (_bad_json_line, "segments/{name}.chunks.jsonl line 3: not valid JSON"),
    "chunks line missing fields": (_record_missing_fields, "segments/{name}.chunks.jsonl line 3: not a chunk record"),
    "chunks not text": (_binary_chunks, "segments/{name}.chunks.jsonl: not UTF-8 text"),
    "npy garbage": (_garbage_npy, "segments/{name}.vectors.npy: not a readable .npy array"),
    "npy truncated": (_truncated_npy, "segments/{name}.vectors.npy"),
    "manifest wrong shape": (_manifest_wrong_shape, "manifest.json: bad field"),
    "manifest not JSON": (_manifest_not_json, "manifest.json: not valid JSON"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_corrupt_index_file_is_one_clear_error(tmp_path: Path, case: str) -> None:
    damage, where = CASES[case]
    path, name = _build(tmp_path)
    damage(path, name)
    with pytest.raises(IndexCorruptError) as caught:
        Index.open(path)
    message = str(caught.value)
    assert isinstance(caught.value, NotBuiltError) and caught.value.exit_code == 3
    assert message.startswith(f"index {path} is corrupt: {where.format(name=name)}")
    assert "re-ingest into a new index" in message and "\n" not in message


@pytest.mark.parametrize("case", ["chunks line not JSON", "npy garbage"])
def test_cli_on_a_corrupt_index_prints_one_line_and_exits_3(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture
) -> None:
    path, name = _build(tmp_path)
    CASES[case][0](path, name)
    for argv in (["search", "owls", "--index", str(path)], ["ingest", str(tmp_path / "x.txt"), "--index", str(path)]):
        (tmp_path / "x.txt").write_text("Owls again.\n")
        with pytest.raises(SystemExit) as code:
            main(["-q", *argv])
        err = capsys.readouterr().err
        assert code.value.code == 3, err
        assert "Traceback" not in err and err.count("\n") == 1 and "is corrupt: segments/" in err
