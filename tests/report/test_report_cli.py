"""`ragtune report` and `ragtune runs` through the CLI."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from ragtune.cli import build_app, main
from ragtune.evaluate.run_files import read_results
from ragtune.runs_db import record_run


def test_report_rerenders_and_compares(fake_run_dir, fake_run_dir_b, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(fake_run_dir, run)
    runner = CliRunner()
    result = runner.invoke(build_app(), ["report", str(run), "--max-questions", "3"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str((run / "report.html").resolve())
    assert "The first 3 of 52 questions" in (run / "report.html").read_text(encoding="utf-8")
    result = runner.invoke(build_app(), ["report", str(run), str(fake_run_dir_b), "-o", str(tmp_path / "c.html")])
    assert result.exit_code == 0, result.output
    assert "run vs run_b" in (tmp_path / "c.html").read_text(encoding="utf-8")


def test_report_missing_run_is_one_clear_error(tmp_path, capsys):
    try:
        main(["report", str(tmp_path / "nope")])
    except SystemExit as exc:
        assert exc.code == 3  # NotBuiltError
    assert "results file not found" in capsys.readouterr().err


def test_runs_lists_the_database(fake_run_dir, tmp_path):
    db = tmp_path / "runs.sqlite"
    record_run(fake_run_dir, read_results(fake_run_dir), db_path=db)
    runner = CliRunner()
    result = runner.invoke(build_app(), ["runs", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert listed[0]["id"] == 1 and listed[0]["questions"] == 40
    table = runner.invoke(build_app(), ["runs", "--db", str(db)])
    assert table.exit_code == 0 and "ragtune runs" in table.output
