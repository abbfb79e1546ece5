"""SQuAD-format JSON: every paragraph of every article is a document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragtune.ingest.base import SkipFile
from ragtune.ingest.decoding import read_text
from ragtune.types import Document

_EXPECTED = 'expected {"data": [{"title": ..., "paragraphs": [{"context": ...}]}]}'


def _articles(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SkipFile(f"not SQuAD format ({_EXPECTED})")
    articles = data["data"]
    for i, article in enumerate(articles):
        if (
            not isinstance(article, dict)
            or not isinstance(article.get("paragraphs"), list)
            or not all(isinstance(p, dict) and isinstance(p.get("context"), str) for p in article["paragraphs"])
        ):
            raise SkipFile(f"not SQuAD format (article {i} has no list of paragraphs with a 'context'; {_EXPECTED})")
    return articles


def squad_documents(data: Any, source: str) -> list[Document]:
    """Documents from parsed SQuAD JSON: id f"{title}#{paragraph index}", title with '_' as spaces."""
    docs = []
    for i, article in enumerate(_articles(data)):
        title = str(article.get("title") or f"article-{i}")
        for j, paragraph in enumerate(article["paragraphs"]):
            if not paragraph["context"].strip():
                continue
            docs.append(
                Document(
                    doc_id=f"{title}#{j}",
                    text=paragraph["context"],
                    title=title.replace("_", " "),
                    source=source,
                    metadata={"article": title},
                )
            )
    return docs


def load_squad(path: Path, doc_id: str, source: str) -> Iterator[Document]:
    """Documents from a SQuAD v1.1/v2.0 JSON file; JSON of any other shape is skipped with a reason."""
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise SkipFile(f"malformed JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    docs = squad_documents(data, source)
    if not docs:
        raise SkipFile("empty (SQuAD file without paragraphs)")
    yield from docs
