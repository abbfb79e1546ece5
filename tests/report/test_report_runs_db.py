"""The SQLite runs database: migrations, recording and listing."""

from __future__ import annotations

import sqlite3

import pytest

from ragtune.errors import NotBuiltError
from ragtune.evaluate.run_files import read_results
from ragtune.runs_db import MIGRATIONS, connect, default_db_path, get_run, list_runs, migrate, record_run, run_results


def test_migrations_apply_once(tmp_path):
    db = connect(tmp_path / "runs.sqlite")
    assert migrate(db) == []  # already up to date
    numbers = [row[0] for row in db.execute("SELECT number FROM _migrations ORDER BY number")]
    assert numbers == list(range(1, len(MIGRATIONS) + 1))
    db.close()


def test_old_database_is_upgraded(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE _migrations (number INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)")
    MIGRATIONS[0](db)
    db.execute("INSERT INTO _migrations VALUES (1, '_m001_runs', 'then')")
    db.execute("INSERT INTO runs (run_dir, created_at, questions, arms, recommended_arm, results_json)"
               " VALUES ('/old', 'then', 3, '[\"rag\"]', 'rag', '{}')")
    db.commit()
    db.close()
    upgraded = connect(path)
    columns = [row[1] for row in upgraded.execute("PRAGMA table_info(runs)")]
    assert "name" in columns
    assert upgraded.execute("SELECT run_dir FROM runs").fetchall() == [("/old",)]  # data kept
    upgraded.close()


def test_record_and_list_runs(fake_run_dir, fake_run_dir_b, tmp_path):
    db = tmp_path / "runs.sqlite"
    first = record_run(fake_run_dir, read_results(fake_run_dir), db_path=db, name="first")
    second = record_run(fake_run_dir_b, read_results(fake_run_dir_b), db_path=db)
    assert (first.id, second.id) == (1, 2)
    assert first.name == "first" and first.questions == 40
    assert first.arms == ("base", "rag", "ft", "ft_rag", "raft")
    assert first.recommended_arm == read_results(fake_run_dir)["recommendation"]["arm"]
    assert first.primary["rag"] == pytest.approx(read_results(fake_run_dir)["arms"]["rag"]["metrics"]["f1"])
    assert [r.id for r in list_runs(db)] == [2, 1]  # newest first
    assert [r.id for r in list_runs(db, limit=1)] == [2]
    assert get_run(1, db).run_dir == str(fake_run_dir.resolve())
    stored = run_results(1, db)
    assert "per_question" not in stored and stored["arms"]["rag"]["n"] == 40
    with pytest.raises(NotBuiltError, match="no run with id 99"):
        get_run(99, db)


def test_default_path_follows_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("RAGTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path / "cache"))
    assert default_db_path() == tmp_path / "data" / "runs.sqlite"


def test_default_path_follows_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("RAGTUNE_DATA_DIR")  # set for every test by tests/conftest.py
    monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path))
    assert default_db_path() == tmp_path / "runs.sqlite"
    assert list_runs() == []
    assert not (tmp_path / "runs.sqlite").exists()  # listing creates no database


def test_tests_never_touch_the_users_runs_database():
    """The autouse fixture in tests/conftest.py points the runs database at a per-test temp folder."""
    import os

    from ragtune.paths import cache_dir

    assert os.environ["RAGTUNE_DATA_DIR"] and default_db_path().parent != cache_dir()
    assert list_runs() == []
