"""Plain text and Markdown files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ragtune.ingest.decoding import humanize_stem, read_text
from ragtune.types import Document

_MD_H1 = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
MAX_TXT_TITLE_CHARS = 100


def markdown_title(text: str) -> str | None:
    """The first level-1 '# heading' of a Markdown text, if any."""
    match = _MD_H1.search(text)
    return match.group(1).strip() if match else None


def text_title(text: str) -> str | None:
    """The first line of a plain text when it is short and followed by a blank line (a title line)."""
    lines = text.lstrip("\n").split("\n", 2)
    if len(lines) >= 2 and not lines[1].strip():
        first = lines[0].strip()
        if first and len(first) < MAX_TXT_TITLE_CHARS:
            return first
    return None


def load_markdown(path: Path, doc_id: str, source: str) -> Iterator[Document]:
    """One document; title = first '# heading', else the humanised file stem."""
    text = read_text(path)
    yield Document(doc_id=doc_id, text=text, title=markdown_title(text) or humanize_stem(path), source=source)


def load_text(path: Path, doc_id: str, source: str) -> Iterator[Document]:
    """One document; title = a short first line followed by a blank line, else the humanised file stem."""
    text = read_text(path)
    yield Document(doc_id=doc_id, text=text, title=text_title(text) or humanize_stem(path), source=source)
