"""HTML files via BeautifulSoup: visible text with paragraph breaks and headings as Markdown '#' lines."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ragtune.ingest.base import SkipFile
from ragtune.ingest.decoding import humanize_stem, read_text
from ragtune.types import Document

DROPPED_TAGS = ["script", "style", "nav", "footer", "head", "noscript", "template", "svg", "iframe", "form"]
BLOCK_TAGS = [
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "aside",
    "blockquote",
    "pre",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "table",
    "tr",
    "figure",
    "figcaption",
    "address",
    "hr",
    "details",
    "summary",
    "body",
]
_HEADING = re.compile(r"^h[1-6]$")
# Private-use sentinels survive get_text() and never occur in real pages.
_BREAK = "\ue000"
_LINE = "\ue001"


def html_to_text(html: str) -> tuple[str, str | None]:
    """(text, title): paragraphs separated by blank lines, headings as '#' lines; title from <title> or <h1>."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = None
    if soup.title is not None and soup.title.get_text(strip=True):
        title = " ".join(soup.title.get_text(" ").split())
    for tag in soup.find_all(DROPPED_TAGS):
        tag.decompose()
    if title is None:
        h1 = soup.find("h1")
        if h1 is not None and h1.get_text(strip=True):
            title = " ".join(h1.get_text(" ").split())
    for heading in soup.find_all(_HEADING):
        words = " ".join(heading.get_text(" ").split())
        marker = "#" * int(heading.name[1])
        heading.replace_with(f"{_BREAK}{marker} {words}{_BREAK}" if words else _BREAK)
    for row in soup.find_all("tr"):  # one line per table row: "cell | cell"
        cells = [" ".join(cell.get_text(" ").split()) for cell in row.find_all(["td", "th"])]
        row.replace_with(_BREAK + " | ".join(cells) + _BREAK)
    for br in soup.find_all("br"):
        br.replace_with(_LINE)
    for tag in soup.find_all(BLOCK_TAGS):
        tag.insert_before(_BREAK)
        tag.insert_after(_BREAK)
    raw = soup.get_text()
    paragraphs = []
    for block in raw.split(_BREAK):
        lines = [" ".join(line.split()) for line in block.split(_LINE)]
        text = "\n".join(line for line in lines if line)
        if text:
            paragraphs.append(text)
    return "\n\n".join(paragraphs), title


def load_html(path: Path, doc_id: str, source: str) -> Iterator[Document]:
    """One document per HTML file; scripts, styles, navigation and footers dropped."""
    text, title = html_to_text(read_text(path))
    if not text.strip():
        raise SkipFile("empty (no visible text)")
    yield Document(doc_id=doc_id, text=text, title=title or humanize_stem(path), source=source)
