"""JSON Lines files: one document per line, including BEIR `corpus.jsonl` ({"_id","title","text","metadata"})."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragtune.ingest.base import Skipped
from ragtune.ingest.decoding import read_text
from ragtune.types import Document

RESERVED_FIELDS = ("id", "_id", "title", "text", "metadata")
MAX_DEPTH = 32  # of a line's JSON: metadata deeper than this is refused (the manifest must write it back)


def _depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply `value` nests lists and objects, counting up to limit + 1 at most."""
    depth, level = 0, [value]
    while level and depth <= limit:
        level = [v for item in level for v in (item.values() if isinstance(item, dict) else item
                                                 if isinstance(item, list) else ())]
        depth += 1
    return depth


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_jsonl_line(line: str, default_id: str, source: str) -> Document | str:
    """A Document from one JSON line, or the reason it cannot be one.

    A line is {"text": ..., "id"|"_id"?, "title"?, ...}; other fields and a nested "metadata" dict
    become metadata (the nested dict wins on a clash).
    """
    try:
        record: Any = json.loads(line, parse_constant=_no_constant)  # NaN / Infinity: strict parsers refuse them
    except json.JSONDecodeError as exc:
        return f"malformed JSON ({exc.msg} at column {exc.colno})"
    except ValueError as exc:
        return f"malformed JSON ({exc})"
    except RecursionError:
        return "malformed JSON (nested too deeply)"
    if not isinstance(record, dict):
        return f"not a JSON object (got {type(record).__name__})"
    if _depth(record) > MAX_DEPTH:
        return f"metadata nested more than {MAX_DEPTH} levels deep"
    text = record.get("text")
    if not isinstance(text, str):
        return "no 'text' string field" if text is None else f"'text' is not a string (got {type(text).__name__})"
    if not text.strip():
        return "empty text"
    raw_id = record.get("id", record.get("_id"))
    if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, (str, int))):
        return f"'id' must be a string or an integer (got {type(raw_id).__name__})"
    doc_id = default_id if raw_id is None or not str(raw_id).strip() else str(raw_id)
    title = record.get("title")
    metadata = {k: v for k, v in record.items() if k not in RESERVED_FIELDS}
    nested = record.get("metadata")
    if isinstance(nested, dict):
        metadata.update(nested)
    elif nested is not None:
        metadata["metadata"] = nested
    return Document(
        doc_id=doc_id,
        text=text.replace("\r\n", "\n"),
        title=title.strip() if isinstance(title, str) else "" if title is None else str(title),
        source=source,
        metadata=metadata,
    )


def load_jsonl(path: Path, doc_id: str, source: str) -> Iterator[Document | Skipped]:
    """One document per non-blank line; a bad line is reported as `Skipped(f"{source}:{line}")`, the rest kept.

    Lines without an id get f"{doc_id}:{line number}" (1-based), stable across re-ingests.
    """
    text = read_text(path)
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        parsed = parse_jsonl_line(line, f"{doc_id}:{number}", source)
        if isinstance(parsed, str):
            yield Skipped(f"{source}:{number}", parsed)
        elif first_line.setdefault(parsed.doc_id, number) != number:
            yield Skipped(
                f"{source}:{number}", f"duplicate id {parsed.doc_id!r} (first on line {first_line[parsed.doc_id]})"
            )
        else:
            yield parsed
