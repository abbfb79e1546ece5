"""The runs database: every `compare` run (and every settings-search trial) recorded in SQLite, with numbered
append-only migrations.

Lives at ragtune.paths.data_dir() / "runs.sqlite" ($RAGTUNE_DATA_DIR, else the cache dir) unless a path is given. A migration, once released, is
never edited: a schema change is a new function appended to MIGRATIONS (simonw/llm's pattern). Applied
migrations are listed in the `_migrations` table, so opening an old database brings it up to date.
"""

from __future__ import annotations

import datetime as _dt
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.errors import InputError, NotBuiltError
from ragtune.paths import data_dir

DB_NAME = "runs.sqlite"


def default_db_path() -> Path:
    """ragtune.paths.data_dir() / "runs.sqlite"."""
    return data_dir() / DB_NAME


def _m001_runs(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_dir TEXT NOT NULL,
            created_at TEXT NOT NULL,
            questions INTEGER,
            arms TEXT NOT NULL,            -- JSON list of arm names
            recommended_arm TEXT,
            results_json TEXT NOT NULL     -- results.json without per-question scores
        )"""
    )


def _m002_metrics(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE metrics (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            arm TEXT NOT NULL,
            metric TEXT NOT NULL,
            value REAL,
            PRIMARY KEY (run_id, arm, metric)
        )"""
    )
    db.execute("CREATE INDEX metrics_by_metric ON metrics(metric, arm)")


def _m003_run_name(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE runs ADD COLUMN name TEXT")
    db.execute("CREATE INDEX runs_by_dir ON runs(run_dir)")


def _m004_search_trials(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE search_trials (
            search_dir TEXT NOT NULL,      -- the folder holding trials.jsonl and best.json
            arm TEXT NOT NULL,
            trial INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            params_json TEXT NOT NULL,     -- the configuration tried
            f1 REAL,                       -- validation token F1
            exact_match REAL,
            latency_ms_p95 REAL,
            seconds REAL,
            feasible INTEGER NOT NULL,
            chosen INTEGER NOT NULL,       -- 1 for the configuration the search chose
            PRIMARY KEY (search_dir, arm, trial)
        )"""
    )


def _m005_trial_outcome(db: sqlite3.Connection) -> None:
    # how a trial ended (its figures are partial when pruned, absent when skipped or failed) and the seconds spent
    # training its adapter in this search (0 when reused; NULL when the arm trains nothing)
    db.execute("ALTER TABLE search_trials ADD COLUMN outcome TEXT NOT NULL DEFAULT 'completed'")
    db.execute("ALTER TABLE search_trials ADD COLUMN train_seconds REAL")


# Append only. The number of a migration is its position (1-based).
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_runs, _m002_metrics, _m003_run_name,
                                                          _m004_search_trials, _m005_trial_outcome]


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database has not seen yet, each in its own transaction; return their names."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (number INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)")
    done = {row[0] for row in db.execute("SELECT number FROM _migrations")}
    applied = []
    for number, migration in enumerate(MIGRATIONS, start=1):
        if number in done:
            continue
        with db:  # one transaction per migration: a failed one leaves the previous schema intact
            migration(db)
            db.execute("INSERT INTO _migrations VALUES (?, ?, ?)", (number, migration.__name__, _now()))
        applied.append(migration.__name__)
    return applied


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def connect(db_path: str | Path | None = None) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the runs database."""
    path = Path(db_path) if db_path is not None else default_db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys = ON")
    migrate(db)
    return db


@dataclass(frozen=True)
class RunRecord:
    """One recorded run, as `ragtune runs` lists it."""

    id: int
    run_dir: str
    created_at: str
    questions: int | None
    arms: tuple[str, ...]
    recommended_arm: str | None
    name: str | None
    primary: dict[str, float | None]  # arm -> primary metric (F1)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "run_dir": self.run_dir, "created_at": self.created_at, "questions": self.questions,
                "arms": list(self.arms), "recommended_arm": self.recommended_arm, "name": self.name,
                "primary": dict(self.primary)}


def record_run(run_dir: str | Path, results: dict[str, Any], db_path: str | Path | None = None,
               name: str | None = None) -> RunRecord:
    """Record a scored run (its results dict) and its per-arm metrics; return the new record."""
    arms = results.get("arms")
    if not isinstance(arms, dict):
        raise InputError(f"results for {str(run_dir)!r} have no 'arms' mapping; is this a results.json dict?")
    stored = {k: v for k, v in results.items() if k != "per_question"}
    recommended = (results.get("recommendation") or {}).get("arm")
    questions = (results.get("setup") or {}).get("questions")
    created = _now()
    directory = str(Path(run_dir).resolve())
    db = connect(db_path)
    try:
        with db:
            cursor = db.execute(
                "INSERT INTO runs (run_dir, created_at, questions, arms, recommended_arm, results_json, name)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (directory, created, questions, json.dumps(list(arms)), recommended,
                 json.dumps(stored, allow_nan=False, default=str), name),
            )
            run_id = int(cursor.lastrowid)
            db.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?)",
                [(run_id, arm, metric, value if isinstance(value, (int, float)) else None)
                 for arm, info in arms.items() for metric, value in (info.get("metrics") or {}).items()],
            )
    finally:
        db.close()
    return get_run(run_id, db_path)


def record_search(search_dir: str | Path, arm: str, trials: list[dict[str, Any]], best: int,
                  db_path: str | Path | None = None) -> int:
    """Record the trials of one arm's settings search (trials.jsonl rows; `best` the chosen trial's number),
    replacing what an earlier (resumed) search of the same folder and arm recorded; returns the rows written."""
    directory = str(Path(search_dir).resolve())
    created = _now()
    rows = [(directory, arm, int(t["trial"]), created, json.dumps(t["params"], sort_keys=True),
             t["validation"].get("f1"), t["validation"].get("exact_match"), t["validation"].get("latency_ms_p95"),
             t.get("seconds"), int(bool(t["feasible"])), int(t["trial"] == best), trial_outcome(t),
             (t.get("training") or {}).get("train_s")) for t in trials]
    db = connect(db_path)
    try:
        with db:
            db.execute("DELETE FROM search_trials WHERE search_dir = ? AND arm = ?", (directory, arm))
            db.executemany("INSERT INTO search_trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    finally:
        db.close()
    return len(rows)


def trial_outcome(trial: dict[str, Any]) -> str:
    """'failed', 'skipped', 'pruned' or 'completed', from a trials.jsonl row."""
    return next((key for key in ("failed", "skipped", "pruned") if trial.get(key)), "completed")


def _record(db: sqlite3.Connection, row: tuple) -> RunRecord:
    run_id, run_dir, created, questions, arms, recommended, name, primary_metric = row
    values = dict(db.execute("SELECT arm, value FROM metrics WHERE run_id = ? AND metric = ?", (run_id, primary_metric)))
    arm_names = tuple(json.loads(arms))
    return RunRecord(id=run_id, run_dir=run_dir, created_at=created, questions=questions, arms=arm_names,
                     recommended_arm=recommended, name=name, primary={a: values.get(a) for a in arm_names})


_SELECT = ("SELECT id, run_dir, created_at, questions, arms, recommended_arm, name,"
           " COALESCE(json_extract(results_json, '$.primary_metric'), 'f1') FROM runs")


def list_runs(db_path: str | Path | None = None, limit: int = 50) -> list[RunRecord]:
    """The most recent runs first."""
    if limit < 1:
        raise InputError(f"limit must be >= 1, got {limit}")
    path = Path(db_path) if db_path is not None else default_db_path()
    if not path.is_file():
        return []  # listing creates no database
    probe = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)  # look before writing a migration
    try:
        tables = {row[0] for row in probe.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        probe.close()
    if "runs" not in tables:
        raise InputError(f"{path}: not a ragtune runs database (it holds no runs table); nothing was changed")
    db = connect(path)
    try:
        rows = db.execute(_SELECT + " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_record(db, row) for row in rows]
    finally:
        db.close()


def get_run(run_id: int, db_path: str | Path | None = None) -> RunRecord:
    """One recorded run by id."""
    db = connect(db_path)
    try:
        row = db.execute(_SELECT + " WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotBuiltError(f"no run with id {run_id} in the runs database")
        return _record(db, row)
    finally:
        db.close()


def run_results(run_id: int, db_path: str | Path | None = None) -> dict[str, Any]:
    """The stored results dict (without per-question scores) of a recorded run."""
    db = connect(db_path)
    try:
        row = db.execute("SELECT results_json FROM runs WHERE id = ?", (run_id,)).fetchone()
    finally:
        db.close()
    if row is None:
        raise NotBuiltError(f"no run with id {run_id} in the runs database")
    return json.loads(row[0])
