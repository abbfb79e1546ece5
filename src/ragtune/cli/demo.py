"""`ragtune demo`: the README's main command — the full comparison on the shipped sample handbook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Path = typer.Option(Path("runs/demo"), "--out", help="Run folder to write (replaced if it exists)."),
        limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N test questions."),
        seed: int = typer.Option(0, "--seed"),
        quick: bool = typer.Option(False, "--quick", help="Smoke run in a few minutes: rule-written training "
                                   "questions, a few training steps, 8 questions (figures mean little)."),
        search: Optional[int] = typer.Option(None, "--search", min=1, metavar="TRIALS", help="Opt-in, after the "
                                             "comparison: search the rag and raft arms' settings with up to TRIALS "
                                             "trials each on part of the questions (e.g. 6), and print the searched vs "
                                             "default F1 on the rest (into OUT/search; extra ragtune\\[search])."),
    ) -> None:
        """Index the sample handbook, fine-tune SFT and RAFT adapters (cached), compare all arms + freshness."""
        from ragtune.cli.summary import print_run_summary
        from ragtune.workflows.demo import SEARCH_FOLDER, run_demo, search_gains

        run_dir = run_demo(out, limit=limit, seed=seed, quick=quick, search=search)
        print_run_summary(run_dir)
        if search:
            for arm in search_gains(run_dir / SEARCH_FOLDER):
                typer.echo(f"search {arm['arm']}: test F1 {arm['searched_f1']:.3f} searched vs {arm['default_f1']:.3f} "
                           f"defaults ({arm['gain_f1']:+.3f}) on {arm['test_questions']} questions; "
                           f"{arm['trials']} trial(s) on {arm['validation_questions']} validation questions in "
                           f"{arm['search_s']:.0f} s; chosen {json.dumps(arm['params'])}")
                if arm["why"]:
                    typer.echo(f"  {arm['why']}")
            typer.echo(f"search report: {run_dir / SEARCH_FOLDER / 'report.html'}")
