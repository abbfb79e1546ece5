"""What the CLI prints around the work: -q silences every bar, warnings name their file, one line per report
(issue #12 item 12). Logging is set up once per process, so these run `ragtune` in a fresh interpreter."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ENTRY = "from ragtune.cli import main; main()"


def ragtune(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    env.pop("RAGTUNE_NO_PROGRESS", None)
    return subprocess.run([sys.executable, "-c", ENTRY, *argv], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)


def _broken_xref_pdf(path: Path) -> Path:
    """A readable PDF whose startxref pointer is off: pypdf repairs it and logs warnings about it."""
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path.with_suffix(".tmp")))
    pdf.drawString(72, 700, "Employees get thirty days of paid leave per year.")
    pdf.showPage()
    pdf.save()
    data = path.with_suffix(".tmp").read_bytes()
    path.with_suffix(".tmp").unlink()
    path.write_bytes(re.sub(rb"startxref\s+(\d+)", lambda m: b"startxref\n" + str(int(m[1]) + 7).encode(), data))
    return path


def test_pdf_warnings_name_their_file_and_newlines_in_names_stay_escaped(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    _broken_xref_pdf(docs / "broken\nxref.pdf")
    (docs / "empty\nfile.txt").write_text("")
    done = ragtune("ingest", str(docs), "--index", str(tmp_path / "ix"), "--embedder", "hash", cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # the empty file was skipped
    assert "1 added" in done.stdout
    lines = done.stderr.splitlines()
    pypdf_lines = [line for line in lines if "startxref" in line]
    assert pypdf_lines and all("broken\\nxref.pdf: " in line for line in pypdf_lines), done.stderr
    assert any(line.startswith("skipped ") and "empty\\nfile.txt: empty" in line for line in lines), done.stderr
    assert not any(line.startswith(("xref.pdf", "file.txt")) for line in lines), done.stderr


def test_quiet_turns_off_the_model_libraries_bars_too(tmp_path: Path) -> None:
    probe = ("from ragtune.progress import set_progress; set_progress(False)\n"
             "import transformers.utils.logging as tl, huggingface_hub.utils as hu\n"
             "print(tl.is_progress_bar_enabled(), hu.are_progress_bars_disabled())\n"
             "set_progress(True); import os; print(os.environ.get('HF_HUB_DISABLE_PROGRESS_BARS'))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert done.stdout.split() == ["False", "True", "None"], done.stderr


@pytest.mark.skipif(not (Path.home() / ".cache" / "ragtune").is_dir(), reason="bundled models not converted")
def test_without_quiet_only_ragtunes_bars_show(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Employees get thirty days of paid leave per year.\n")
    done = ragtune("ingest", str(docs), "--index", str(tmp_path / "ix"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Loading weights" not in done.stderr and "it/s]" not in done.stderr, done.stderr  # no tqdm bar
    assert "1 added" in done.stdout


@pytest.mark.skipif(not (Path.home() / ".cache" / "ragtune").is_dir(), reason="bundled models not converted")
def test_quiet_ingest_with_the_bundled_embedder_prints_no_bar(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Employees get thirty days of paid leave per year.\n")
    done = ragtune("-q", "ingest", str(docs), "--index", str(tmp_path / "ix"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Loading weights" not in done.stderr and "Embedding" not in done.stderr
    assert done.stderr.strip() == "", done.stderr  # nor onnxruntime's quantisation hint when the int8 graph is built
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["precision"] == "int8" and manifest["config"]["embed"]["precision"] == "int8"  # the default


def test_stages_are_numbered_on_stderr_and_silenced_with_the_bars(capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from ragtune.progress import Stages, set_progress
    from ragtune.workflows.demo import DEMO_STAGES

    monkeypatch.delenv("RAGTUNE_NO_PROGRESS", raising=False)
    stages = Stages(list(DEMO_STAGES[:3]))
    set_progress(True)
    try:
        stages.start(DEMO_STAGES[1])
        assert capsys.readouterr().err == f"[2/3] {DEMO_STAGES[1]}\n"
        set_progress(False)  # -q
        stages.start(DEMO_STAGES[2])
        assert capsys.readouterr().err == ""
    finally:
        set_progress(False)
