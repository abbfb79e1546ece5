"""SQuAD-format JSON: every paragraph of every article is a document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragtune.ingest.base import SkipFile, Skipped
from ragtune.ingest.decoding import read_text
from ragtune.types import Document

_EXPECTED = 'expected {"data": [{"title": ..., "paragraphs": [{"context": ...}]}]}'


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _article_problem(article: Any) -> str | None:
    if not isinstance(article, dict):
        return f"article is not a JSON object (got {_kind(article)})"
    if not isinstance(article.get("paragraphs"), list):
        return f"article has no 'paragraphs' list (got {_kind(article.get('paragraphs'))})"
    return None


def _paragraph_problem(paragraph: Any) -> str | None:
    if not isinstance(paragraph, dict):
        return f"paragraph is not a JSON object (got {_kind(paragraph)})"
    if not isinstance(paragraph.get("context"), str):
        return f"paragraph has no 'context' string (got {_kind(paragraph.get('context'))})"
    return None


def iter_squad(data: Any, source: str) -> Iterator[Document | Skipped]:
    """Documents from parsed SQuAD JSON, id f"{title}#{paragraph index}", title with '_' as spaces; a bad
    article or paragraph is a `Skipped` at f"{source}:data[i].paragraphs[j]" and the rest is kept.

    SkipFile when the JSON is not SQuAD at all (no "data" list, or not one well-formed paragraph)."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SkipFile(f"not SQuAD format ({_EXPECTED})")
    good: list[Document] = []
    bad: list[Skipped] = []
    for i, article in enumerate(data["data"]):
        problem = _article_problem(article)
        if problem:
            bad.append(Skipped(f"{source}:data[{i}]", problem))
            continue
        title = str(article.get("title") or f"article-{i}")
        for j, paragraph in enumerate(article["paragraphs"]):
            problem = _paragraph_problem(paragraph)
            if problem:
                bad.append(Skipped(f"{source}:data[{i}].paragraphs[{j}]", problem))
            elif paragraph["context"].strip():
                good.append(Document(
                    doc_id=f"{title}#{j}", text=paragraph["context"], title=title.replace("_", " "),
                    source=source, metadata={"article": title},
                ))
    if not good and bad:  # nothing usable: the file is not SQuAD, say so once
        where = bad[0].path.rsplit(":", 1)[1]
        raise SkipFile(f"not SQuAD format ({where}: {bad[0].reason}; {_EXPECTED})")
    yield from good
    yield from bad


def squad_documents(data: Any, source: str) -> list[Document]:
    """The documents of parsed SQuAD JSON (bad articles and paragraphs left out; see `iter_squad`)."""
    return [item for item in iter_squad(data, source) if isinstance(item, Document)]


def load_squad(path: Path, doc_id: str, source: str) -> Iterator[Document | Skipped]:
    """Documents from a SQuAD v1.1/v2.0 JSON file; JSON of any other shape is skipped with a reason."""
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise SkipFile(f"malformed JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise SkipFile("malformed JSON (nested too deeply)") from None
    items = list(iter_squad(data, source))
    if not any(isinstance(item, Document) for item in items):
        raise SkipFile("empty (SQuAD file without paragraphs)")
    yield from items
