"""`ragtune demo`: the README's main command — the full comparison on the shipped sample handbook."""

from __future__ import annotations

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
    ) -> None:
        """Index the sample handbook, fine-tune SFT and RAFT adapters (cached), compare all arms + freshness."""
        from ragtune.cli.summary import print_run_summary
        from ragtune.workflows.demo import run_demo

        run_dir = run_demo(out, limit=limit, seed=seed, quick=quick)
        print_run_summary(run_dir)
