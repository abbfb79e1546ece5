"""Reading and writing a run's files: predictions.jsonl (one row per question × arm) and results.json.

Row contract of predictions.jsonl (written by the compare harness):
{"qid", "arm", "question", "answer", "gold_answers": [...], "gold_doc_ids": [...], "gold_chunk_ids": [...],
 "citations": [{"number", "doc_id", "chunk_id", "title", "text", "score", "cited": bool}],
 "retrieve_ms", "generate_ms", "prompt_tokens", "completion_tokens", "freshness": bool}
Optional: "retrieved": [{"rank", "doc_id", "chunk_id", "score"}] — every retrieved passage, for recall@k, when
"citations" holds only the sources the answer used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ragtune.atomic import write_text_atomic  # noqa: F401  (re-exported: the run-folder writers use it)
from ragtune.errors import InputError, NotBuiltError

RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "predictions.jsonl"
REPORT_FILE = "report.html"

REQUIRED_ROW_KEYS = ("qid", "arm", "answer", "gold_answers")


def json_safe(obj: Any) -> Any:
    """A copy of obj that json.dumps accepts strictly: NaN/inf become None, tuples become lists."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return json_safe(obj.item())
    return obj


def validate_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check the required keys of prediction rows and fill the optional ones with defaults."""
    checked = []
    for i, row in enumerate(rows):
        missing = [key for key in REQUIRED_ROW_KEYS if key not in row]
        if missing:
            raise InputError(f"prediction row {i} (qid={row.get('qid')!r}, arm={row.get('arm')!r}) lacks {missing}")
        golds = row["gold_answers"]
        if isinstance(golds, str) or not golds:
            raise InputError(f"prediction row {i} (qid={row['qid']!r}): gold_answers must be a non-empty list, got {golds!r}")
        filled = {
            "question": "",
            "gold_doc_ids": [],
            "gold_chunk_ids": [],
            "citations": [],
            "retrieve_ms": 0.0,
            "generate_ms": 0.0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "freshness": False,
            **row,
        }
        filled["qid"] = str(filled["qid"])
        checked.append(filled)
    return checked


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a predictions.jsonl file (a run folder or the file itself), validated."""
    file = Path(path)
    if not file.exists():
        raise NotBuiltError(f"run folder not found: {str(file)!r} (predictions file not found)")
    if file.is_dir():
        file = file / PREDICTIONS_FILE
    if not file.is_file():
        raise NotBuiltError(f"predictions file not found: {str(file)!r}")
    rows = []
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{file}:{number}: not valid JSON ({exc.msg})") from exc
    return validate_rows(rows)


def read_results(path: str | Path) -> dict[str, Any]:
    """The results dict of a run folder (or of a results.json file)."""
    file = Path(path)
    if not file.exists():
        raise NotBuiltError(f"run folder not found: {str(file)!r} (results file not found)")
    if file.is_dir():
        file = file / RESULTS_FILE
    if not file.is_file():
        raise NotBuiltError(f"results file not found: {str(file)!r} (is this a run folder written by compare?)")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{file}: not valid JSON ({exc.msg})") from exc


def dumps_results(results: dict[str, Any]) -> str:
    """results as strict, pretty JSON."""
    return json.dumps(json_safe(results), indent=2, ensure_ascii=False, allow_nan=False)


def dumps_predictions(rows: Iterable[dict[str, Any]]) -> str:
    """Prediction rows as JSON lines."""
    return "".join(json.dumps(json_safe(row), ensure_ascii=False, allow_nan=False) + "\n" for row in rows)
