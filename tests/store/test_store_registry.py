"""Choosing storage by the --index value, filter terms, and the one-line errors of a store URI (no server needed)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from ragtune.cli import main
from ragtune.errors import BackendError, ConfigError, MissingExtraError
from ragtune.index import Index
from ragtune.store import ACCESS_FIELD, is_store_uri, open_store, with_collection
from ragtune.store.base import filter_terms, plan_filters, row_id
from ragtune.store.registry import redact_uri, store_uri
from ragtune.types import Chunk


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return int(exited.value.code)


def test_folder_paths_and_uris_are_told_apart() -> None:
    assert not is_store_uri("runs/index") and not is_store_uri(Path("C:/index")) and not is_store_uri(None)
    assert store_uri("milvus://127.0.0.1:19530/docs") == "milvus://127.0.0.1:19530/docs"
    # typer hands --index over as a Path, which collapses "//": the URI is read back
    assert store_uri(Path("milvus://127.0.0.1:19530/docs")) == "milvus://127.0.0.1:19530/docs"
    assert store_uri(Path("postgresql://me@h:54329/db?collection=c")) == "postgresql://me@h:54329/db?collection=c"
    assert store_uri(Path("notascheme:/x")) is None


def test_with_collection_and_redaction() -> None:
    assert with_collection("milvus://h:1", "c") == "milvus://h:1/c"
    assert with_collection("postgresql://u@h:1/db?sslmode=disable", "c") == "postgresql://u@h:1/db?sslmode=disable&collection=c"
    assert redact_uri("milvus://root:secret@h:1/c") == "milvus://root:***@h:1/c"


def test_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown index URI scheme 'redis'"):
        open_store("redis://h:1/c")


def test_filter_terms_and_plans() -> None:
    chunk = Chunk("a#0", "a", "t", source="a.md", metadata={"year": 2020, "groups": ["hr", "eng"], "long": "x" * 500})
    terms = filter_terms(chunk)
    assert terms[:5] == ["doc_id=a", "source=a.md", "year=2020", "groups=hr", "groups=eng"]
    assert terms[5].startswith("long#sha1:") and len(terms[5]) < 60
    plan = plan_filters({"year": "2020", "doc_id": ["a", "b"], ACCESS_FIELD: ["hr"]})
    assert plan.any_of == (("year=2020",), ("doc_id=a", "doc_id=b")) and plan.access_groups == ("hr",)
    assert plan_filters({"doc_id": []}).empty
    assert row_id("h1", "a#0") == row_id("h1", "a#0") != row_id("h2", "a#0")


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # import pymilvus -> ImportError
    with pytest.raises(MissingExtraError, match=r"ragtune\[milvus\]"):
        Index.open("milvus://127.0.0.1:19530/docs")
    assert _exit_code(["search", "q", "--index", "milvus://127.0.0.1:19530/docs"]) == 4
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ragtune[milvus]" in err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_one_line_exit_5(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pymilvus")
    uri = f"milvus://127.0.0.1:{_closed_port()}/docs"
    with pytest.raises(BackendError, match="cannot connect"):
        Index.open(uri)
    assert _exit_code(["search", "q", "--index", uri]) == 5
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and uri in err


def test_bad_collection_name_is_a_config_error() -> None:
    pytest.importorskip("pymilvus")
    with pytest.raises(ConfigError, match="bad Milvus collection name"):
        Index.open("milvus://127.0.0.1:19530/bad-name")


def test_index_dispatches_uris_by_scheme_without_importing_the_store_layer() -> None:
    """ragtune.index names no backend: a URI goes to the one registered for its scheme (ragtune.store on demand)."""
    import subprocess
    import sys

    code = ("import sys; import ragtune.index.store as s; print('ragtune.store' in sys.modules);"
            "print(s._store_uri('milvus:/h:1/c'), s._store_uri('runs/x'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split("\n")[:2] == ["False", "milvus://h:1/c None"], done.stderr
    from ragtune.index import Index

    with pytest.raises(ConfigError, match="unknown index URI scheme 'redis'"):
        Index.open("redis://h:1/c")


@pytest.mark.parametrize("value", ["qdrant://127.0.0.1:6333/docs", "postgresql://", "milvus:"])
def test_an_incomplete_or_unknown_uri_creates_no_folder(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """typer turns `--index qdrant://h/c` into Path('qdrant:/h/c') and `postgresql://` into 'postgresql:': once
    these were folders an ingest filled; now one line, exit 2, and nothing on disk."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\nSome text.\n", encoding="utf-8")
    assert _exit_code(["ingest", "docs", "--index", value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "reads as a URI" in err and value.split(":")[0] + "://" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs"]
    assert _exit_code(["search", "q", "--index", value]) == 2


def test_an_existing_folder_named_like_a_scheme_still_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes:").mkdir()  # made by the user: an index may go there
    Index.create("notes:")
    assert len(Index.open(Path("notes:"))) == 0


@pytest.mark.parametrize("port", ["99999", "port"])
def test_a_bad_milvus_port_is_a_config_error(port: str) -> None:
    pytest.importorskip("pymilvus")
    with pytest.raises(ConfigError, match="bad Milvus URI .*[Pp]ort"):
        Index.open(f"milvus://127.0.0.1:{port}/docs")

