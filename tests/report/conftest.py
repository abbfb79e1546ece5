"""Fixtures of the report tests: a realistic fake run folder (see report_fake_run.py)."""

from __future__ import annotations

import pytest
from report_fake_run import write_fake_run


@pytest.fixture(scope="session")
def fake_run_dir(tmp_path_factory):
    """A scored fake run (results.json + predictions.jsonl), shared read-only by the report tests."""
    return write_fake_run(tmp_path_factory.mktemp("runs") / "run_a", seed=7)


@pytest.fixture(scope="session")
def fake_run_dir_b(tmp_path_factory):
    """A second fake run on the same questions with different answers, for side-by-side comparisons."""
    return write_fake_run(tmp_path_factory.mktemp("runs_b") / "run_b", seed=11)


@pytest.fixture(scope="session")
def rendered_report(fake_run_dir, tmp_path_factory):
    """The fake run's report.html, rendered once into a copy of the run folder."""
    from ragtune.report.render import render_report

    return render_report(fake_run_dir, out=tmp_path_factory.mktemp("html") / "report.html")
