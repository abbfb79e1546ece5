"""Failures found by a hostile probe of the CLI (session 19): data lost to --overwrite and --out, tracebacks on
deep or non-UTF-8 input, silent success on nothing, options that did nothing. One line, an exit status, nothing
lost."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cli_tree import one_error_line, run_main

from ragtune.config import EmbedConfig, IndexConfig
from ragtune.index import Index
from ragtune.types import Document


@pytest.fixture()
def index(tmp_path: Path) -> Path:
    made = Index.create(tmp_path / "idx", IndexConfig(embed=EmbedConfig(model="hash:64")))
    made.add_documents([Document("a.md", "The harbour opened in 1952. Ilse Varga is the master.", "Harbour"),
                        Document("b.md", "The kitchen serves soup on Tuesdays.", "Kitchen")])
    return tmp_path / "idx"


@pytest.fixture()
def questions(tmp_path: Path) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "Who is the master?", "answer": "Ilse Varga"}) + "\n")
    return path


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("target", ["index", "parent", "docs"])
def test_compare_overwrite_never_deletes_what_it_reads_or_a_folder_of_other_files(index, questions, tmp_path,
                                                                                target, capsys):
    """`compare --out <the index> --overwrite` replaced the index by the run; `--out mydocs --overwrite` deleted a
    folder of the user's files."""
    out = {"index": index, "parent": tmp_path, "docs": tmp_path / "docs"}[target]
    if target == "docs":
        out.mkdir()
        (out / "thesis.txt").write_text("important")
    before = _files(tmp_path)
    code, _, err = run_main(["compare", "--index", str(index), "--questions", str(questions), "--out", str(out),
                             "--arms", "base", "--overwrite"], capsys)
    assert code == 2
    line = one_error_line(err)
    assert ("holds the --index" in line) if target != "docs" else ("not a ragtune run folder" in line)
    assert _files(tmp_path) == before


def test_compare_resume_and_overwrite_together_are_refused(index, questions, tmp_path, capsys):
    code, _, err = run_main(["compare", "--index", str(index), "--questions", str(questions), "--out",
                             str(tmp_path / "run"), "--arms", "base", "--overwrite", "--resume"], capsys)
    assert code == 2 and "give one of them" in one_error_line(err)


def test_synth_out_inside_the_index_and_export_onto_its_input_are_refused(index, tmp_path, capsys):
    manifest = (index / "manifest.json").read_text()
    code, _, err = run_main(["synth", "--index", str(index), "--out", str(index / "manifest.json"), "--rules-only"],
                            capsys)
    assert code == 2 and "inside the index folder" in one_error_line(err)
    assert (index / "manifest.json").read_text() == manifest
    code, _, err = run_main(["synth", "--index", str(index), "--out", str(tmp_path / "qa.jsonl"), "--rules-only",
                             "--questions", "llm"], capsys)
    assert code == 2 and "--rules-only" in one_error_line(err)
    train = tmp_path / "t.jsonl"
    train.write_text(json.dumps({"question": "Who is the master?", "answer": "Ilse Varga"}) + "\n")
    kept = train.read_text()
    code, _, err = run_main(["finetune", "--train", str(train), "--out", str(tmp_path / "ad"), "--export-only",
                             "--export", str(train), "--min-examples", "1"], capsys)
    assert code == 2 and "is the --train file" in one_error_line(err) and train.read_text() == kept


def test_deep_or_non_finite_json_lines_are_skipped_not_a_traceback(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    lines = ['{"id": "ok", "text": "kelp grows fast"}',
             '{"id": "deep", "text": "x", "m": %s}' % ("[" * 3000 + "]" * 3000),
             '{"id": "deepish", "text": "x", "m": %s}' % ("[" * 600 + "]" * 600),
             '{"id": "nan", "text": "x", "score": NaN}']
    (docs / "c.jsonl").write_text("\n".join(lines) + "\n")
    code, out, err = run_main(["ingest", str(docs), "--index", str(tmp_path / "idx"), "--embedder", "hash:64"], capsys)
    assert code == 1 and "Traceback" not in err
    assert "1 added" in out and "nested too deeply" in err and "32 levels" in err and "NaN is not valid JSON" in err
    assert [d.doc_id for d in Index.open(tmp_path / "idx").documents()] == ["ok"]


def test_a_non_utf8_questions_file_for_ask_is_oneone_error_line(index, tmp_path, capsys):
    path = tmp_path / "latin.txt"
    path.write_bytes(b"caf\xe9?\n")
    code, _, err = run_main(["ask", "--questions", str(path), "--index", str(index)], capsys)
    assert code == 2 and "not valid UTF-8" in one_error_line(err) and "latin.txt" in err


def test_runs_leaves_a_foreign_database_alone_and_caps_its_limit(tmp_path, capsys):
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE t (x)")
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    for path in (foreign, empty):
        code, _, err = run_main(["runs", "--db", str(path)], capsys)
        assert code == 2 and "not a ragtune runs database" in one_error_line(err)
    with sqlite3.connect(foreign) as db:
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["t"]
    assert empty.read_bytes() == b""
    code, _, err = run_main(["runs", "-n", "99999999999999999999"], capsys)
    assert code == 2 and "Traceback" not in err


def test_eval_retrieval_with_no_usable_corpus_fails_instead_of_printing_zeros(tmp_path, capsys):
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_bytes(b'{"_id": "d1", "text": "kelp"}\n\xff\xfe\n')
    (beir / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "kelp?"}) + "\n")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    code, _, err = run_main(["eval", "retrieval", str(beir), "--embedder", "hash:64", "--mode", "bm25"], capsys)
    assert code == 2 and "none of the 1 documents the qrels judge is in the index" in err.splitlines()[-1]


def test_search_snippets_never_carry_escape_codes(tmp_path, capsys):
    made = Index.create(tmp_path / "idx", IndexConfig(embed=EmbedConfig(model="hash:64")))
    made.add_documents([Document("e.md", "kelp \x1b]0;pwned\x07 grows in the bay", "Esc")])
    code, out, _ = run_main(["search", "kelp", "--index", str(tmp_path / "idx"), "--mode", "bm25"], capsys)
    assert code == 0 and "\x1b" not in out and "\x07" not in out and "\\x1b" in out


def test_ingest_of_nothing_and_options_that_would_do_nothing_are_errors(index, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run_main(["ingest", str(tmp_path / "empty"), "--index", str(tmp_path / "new")], capsys)
    assert code == 2 and "no documents found" in one_error_line(err) and not (tmp_path / "new").exists()
    code, _, err = run_main(["ingest", str(tmp_path / "empty"), "--index", str(tmp_path / "new"), "--ray-workers",
                             "5"], capsys)
    assert code == 2 and "--ray-workers applies with --ray only" in one_error_line(err)
    code, _, err = run_main(["ask", "Who?", "--closed-book", "--filter", "a=b", "--model", "bundled"], capsys)
    assert code == 2 and "--closed-book" in one_error_line(err)


def test_merge_onto_its_own_adapter_is_refused(tmp_path):
    from ragtune.errors import ConfigError
    from ragtune.train import merge_adapter

    adapter = tmp_path / "ad"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    with pytest.raises(ConfigError, match="holds the adapter being merged"):
        merge_adapter(adapter, adapter, overwrite=True)
    assert (adapter / "adapter_config.json").read_text() == "{}"


def test_messages_name_what_the_user_gave(index, tmp_path, capsys):
    """Python-ish messages: two config dicts, a pydantic prefix and echo, a repr, 'format version None'."""
    code, _, err = run_main(["ingest", str(tmp_path), "--index", str(index), "--chunk-tokens", "50"], capsys)
    line = one_error_line(err)
    assert code == 2 and "was built with --chunk-tokens 200 (asked 50)" in line and "new index only" in line
    code, _, err = run_main(["serve", "--index", str(index), "--arm", "nope"], capsys)
    assert code == 2 and one_error_line(err).startswith("error: bad serve option: unknown arm 'nope' (choose from")
    assert "Value error" not in err and "got {" not in err
    code, _, err = run_main(["finetune-embedder", "--index", str(index), "--out", str(tmp_path / "fe"), "--per-chunk",
                             "0", "--sentence-queries", "0"], capsys)
    assert code == 2 and "cannot both be 0" in one_error_line(err) and "EmbedderTuneConfig" not in err
    results = tmp_path / "run" / "results.json"
    results.parent.mkdir()
    results.write_text("{}")
    code, _, err = run_main(["report", str(results)], capsys)
    assert code == 2 and "is a file; give the run folder" in one_error_line(err)
    (index / "manifest.json").write_text("{}")
    code, _, err = run_main(["search", "kelp", "--index", str(index)], capsys)
    assert code == 3 and "no format_version" in one_error_line(err) and "None" not in err


def test_write_errors_name_the_path_given_not_a_temp_file(tmp_path, monkeypatch):
    """'Is a directory: .emptyd.e6439d4f.tmp' and 'File exists: afile' named files the user never gave."""
    from ragtune.atomic import write_text_atomic

    (tmp_path / "afile").write_text("x")
    with pytest.raises(OSError, match="afile is a file, not a folder"):
        write_text_atomic(tmp_path / "afile" / "r.html", "<html>")

    def refuse(self, data):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_bytes", refuse)
    with pytest.raises(PermissionError) as raised:
        write_text_atomic(tmp_path / "r.html", "<html>")
    assert raised.value.filename == str(tmp_path / "r.html") and not list(tmp_path.glob(".r.html*"))


def test_a_read_only_index_says_so_when_written(index, monkeypatch, capsys):
    """Was 'Permission denied: …/.write.lock' (root ignores modes, so the lock file's refusal is faked)."""
    class ReadOnlyLock:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def acquire(self, *args, **kwargs):
            raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("ragtune.index.lock.FileLock", ReadOnlyLock)
    code, _, err = run_main(["delete", "a.md", "--index", str(index)], capsys)
    assert code == 2 and "is read-only here: cannot take its write lock" in one_error_line(err)
    assert [d.doc_id for d in Index.open(index).documents()] == ["a.md", "b.md"]


@pytest.mark.parametrize(("line", "result"), [
    ('{"id": {"a": 1}, "text": "x"}', "'id' must be a string or an integer (got dict)"),
    ('{"id": true, "text": "x"}', "'id' must be a string or an integer (got bool)"),
    ('{"id": 7, "text": "x"}', "7"), ('{"id": "  ", "text": "x"}', "f:3"),
])
def test_jsonl_ids_are_strings_or_integers(line, result):
    """A dict or a boolean id became Python text ("{'a': 1}", "True"); a blank id a blank document id."""
    from ragtune.ingest.jsonl import parse_jsonl_line

    parsed = parse_jsonl_line(line, "f:3", "f")
    assert (parsed if isinstance(parsed, str) else parsed.doc_id) == result


def test_options_that_would_do_nothing_in_compare_and_ask(index, questions, tmp_path, capsys):
    code, _, err = run_main(["compare", "--index", str(index), "--questions", str(questions), "--out",
                             str(tmp_path / "run"), "--arms", "base", "--train-epochs", "2"], capsys)
    assert code == 2 and "add --train" in one_error_line(err)
    code, _, err = run_main(["compare", "--index", str(index), "--questions", str(questions), "--out",
                             str(tmp_path / "run"), "--arms", "base", "--train", "--train-epochs", "-1"], capsys)
    assert code == 2 and "train_epochs" in one_error_line(err)
    code, _, err = run_main(["ask", "Who?", "--index", str(index), "--model-name", "foo"], capsys)
    assert code == 2 and "--model-name names the model of an http(s) --model" in one_error_line(err)
    assert not (tmp_path / "run").exists()


def test_synth_and_ask_on_an_empty_index_say_so(tmp_path, capsys):
    """synth wrote an empty QA file and ask answered with no sources, both exit 0."""
    Index.create(tmp_path / "empty", IndexConfig(embed=EmbedConfig(model="hash:64")))
    code, _, err = run_main(["synth", "--index", str(tmp_path / "empty"), "--out", str(tmp_path / "qa.jsonl"),
                             "--rules-only"], capsys)
    assert code == 2 and "is empty: ingest documents first" in one_error_line(err)
    assert not (tmp_path / "qa.jsonl").exists()
    code, _, err = run_main(["ask", "Who?", "--index", str(tmp_path / "empty")], capsys)
    assert code == 2 and "is empty: ingest documents first" in one_error_line(err)


def test_ctrl_c_says_interrupted(tmp_path, monkeypatch, capsys):
    """typer turns Ctrl-C into an exit status of 130, which left stderr empty."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("ragtune.ingest.load_documents", interrupted)
    (tmp_path / "a.md").write_text("# A\nText.\n")
    code, _, err = run_main(["ingest", str(tmp_path / "a.md"), "--index", str(tmp_path / "idx")], capsys)
    assert code == 130 and one_error_line(err) == "interrupted" and not (tmp_path / "idx").exists()


def test_an_empty_ray_address_is_an_error_not_no_ray(tmp_path, capsys):
    (tmp_path / "a.md").write_text("# A\nText.\n")
    code, _, err = run_main(["ingest", str(tmp_path / "a.md"), "--index", str(tmp_path / "idx"), "--ray", ""], capsys)
    assert code == 2 and "bad --ray address ''" in one_error_line(err) and not (tmp_path / "idx").exists()
