"""The public Python API: lazy names on `ragtune`, no side effects at import, and the README's Python block runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "sentence_transformers", "peft", "fastapi", "onnxruntime", "prometheus_client")


def _run(code: str, cwd: Path | None = None, timeout: int = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "RAGTUNE_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_import_is_light_and_changes_nothing():
    code = (
        "import os, sys, warnings, logging\n"
        "filters, env, handlers = list(warnings.filters), dict(os.environ), list(logging.getLogger().handlers)\n"
        "import ragtune\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
        "print(warnings.filters == filters, dict(os.environ) == env, logging.getLogger().handlers == handlers)\n"
    )
    done = _run(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "True True True"]


def test_public_names_resolve_to_the_library_functions():
    import ragtune
    from ragtune.workflows.compare import run_compare
    from ragtune.index.store import Index
    from ragtune.ingest.loaders import load_documents
    from ragtune.pipeline import answer
    from ragtune.serve.app import create_app

    assert (ragtune.Index, ragtune.load_documents, ragtune.answer, ragtune.compare, ragtune.create_app) == (
        Index, load_documents, answer, run_compare, create_app)
    assert {"Index", "load_documents", "answer", "compare", "create_app"} <= set(ragtune.__all__) & set(dir(ragtune))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ragtune.nope  # noqa: B018


def test_public_names_import_nothing_heavy_until_used():
    done = _run(f"import sys\nfrom ragtune import Index, load_documents\nprint([m for m in {HEAVY!r} if m in sys.modules])")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def readme_python_block() -> str:
    """The first ```python block of the README's "Use it from Python" section."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Use it from Python", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README section 'Use it from Python' has no python block"
    return match.group(1)


@pytest.mark.integration
def test_readme_python_block_runs(tmp_path):
    """The README example with the bundled models, in a fresh folder (~20 s once the model is converted)."""
    code = readme_python_block()
    assert "from ragtune import" in code
    done = _run(code, cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| cites" in done.stdout and "leave.md" in done.stdout
    assert (tmp_path / "my-index").is_dir()
