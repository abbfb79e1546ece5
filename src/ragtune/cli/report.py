"""`ragtune report RUN_DIR [RUN_DIR2]` re-renders a run's report or compares two runs; `ragtune runs` lists them."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        run_dir: Path = typer.Argument(..., help="Run folder written by `ragtune compare`."),
        run_dir2: Optional[Path] = typer.Argument(None, help="A second run folder: write a side-by-side comparison."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file to write (default: in the run folder)."),
        open_: bool = typer.Option(False, "--open", help="Open the page in the default browser."),
        max_questions: int = typer.Option(500, "--max-questions", min=1, help="Questions in the drill-down."),
    ) -> None:
        """Re-render RUN_DIR/report.html, or with RUN_DIR2 write RUN_DIR2/comparison.html (A = RUN_DIR)."""
        from ragtune.errors import InputError

        for given in (run_dir, run_dir2):
            if given is not None and given.is_file():
                raise InputError(f"{given} is a file; give the run folder `ragtune compare` wrote (e.g. {given.parent})")
        if out is not None and out.is_dir():
            raise InputError(f"--out {out} is a folder; give the .html file to write")
        if run_dir2 is None:
            from ragtune.report.render import render_report

            path = render_report(run_dir, out=out, max_questions=max_questions)
        else:
            from ragtune.report.compare import render_comparison

            path = render_comparison(run_dir, run_dir2, out=out)
        typer.echo(str(path.resolve()))
        if open_:
            import webbrowser

            webbrowser.open(path.resolve().as_uri())

    @app.command()
    def runs(
        limit: int = typer.Option(20, "--limit", "-n", min=1, max=1_000_000, help="How many recent runs."),
        db: Optional[Path] = typer.Option(None, "--db", help="Runs database (default: the cache dir's runs.sqlite)."),
        json_: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List the recorded comparison runs, most recent first."""
        import sqlite3

        from ragtune.errors import InputError
        from ragtune.runs_db import list_runs

        if db is not None and not db.is_file():  # listing must not create a database (or its folders)
            raise InputError(f"--db {db}: no runs database there" + (" (it is a folder)" if db.is_dir() else ""))
        try:
            records = list_runs(db_path=db, limit=limit)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"--db {db}: not a ragtune runs database ({exc})") from exc
        if json_:
            from ragtune.cli.common import print_json

            print_json([r.to_dict() for r in records])
            return
        from rich.table import Table

        from ragtune.cli.common import console

        table = Table(title="ragtune runs")
        for column in ("id", "created (UTC)", "questions", "recommended", "F1 per arm", "run folder"):
            table.add_column(column)
        for r in records:
            scores = ", ".join(f"{arm} {value:.2f}" if value is not None else f"{arm} –" for arm, value in r.primary.items())
            table.add_row(str(r.id), r.created_at[:16].replace("T", " "), str(r.questions or "–"),
                          r.recommended_arm or "–", scores, r.run_dir)
        console().print(table if records else "no runs recorded yet")
