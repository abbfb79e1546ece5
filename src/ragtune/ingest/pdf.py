"""PDF files via pypdf: the text layer of every page, pages separated by blank lines."""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from ragtune.ingest.base import SkipFile
from ragtune.ingest.decoding import humanize_stem, read_bytes
from ragtune.types import Document

logger = logging.getLogger(__name__)

PLACEHOLDER_TITLES = {"", "untitled", "(anonymous)", "anonymous"}  # what PDF writers put when no title is set


_HEADING_MAX_CHARS = 80
_HEADING_MAX_WORDS = 8


def _looks_like_heading(line: str) -> bool:
    """A short line with a capital start and no sentence punctuation at the end ('Weather limits')."""
    return (
        len(line) <= _HEADING_MAX_CHARS
        and len(line.split()) <= _HEADING_MAX_WORDS
        and line[:1].isupper()
        and line[-1] not in ".,;:!?-"
    )


def pdf_paragraphs(page_text: str) -> str:
    """pypdf's lines regrouped into paragraphs separated by blank lines.

    pypdf gives one line per printed line and no paragraph gaps; wrapped lines are joined (a line ending
    in '-' joins the next without a space) and heading-like lines become paragraphs of their own, so
    chunking can cut between sections.
    """
    paragraphs: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            paragraphs.append(" ".join(current))
            current.clear()

    lines = [" ".join(line.split()) for line in page_text.split("\n")]
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if not line:
            flush()
        elif _looks_like_heading(line) and following:
            flush()
            paragraphs.append(line)
        elif current and current[-1].endswith("-") and current[-1][-2:-1].isalpha():
            current[-1] += line
        else:
            current.append(line)
    flush()
    return "\n\n".join(paragraphs)


def _first_line(text: str) -> str | None:
    for line in text.split("\n"):
        line = " ".join(line.split())
        if line:
            return line[:200]
    return None


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _pypdf_warnings_about(path: Path) -> Iterator[None]:
    """pypdf logs the repairs it makes ("Ignoring wrong pointing object 6 0") without naming the file: hold them
    while this file is read, then log each distinct one once as "FILE: warning (xN)"."""
    pypdf_logger = logging.getLogger("pypdf")
    collect, propagate = _Collect(), pypdf_logger.propagate
    pypdf_logger.addHandler(collect)
    pypdf_logger.propagate = False
    try:
        yield
    finally:
        pypdf_logger.removeHandler(collect)
        pypdf_logger.propagate = propagate
        for message, n in Counter(collect.messages).items():
            logger.warning("%s: %s%s", path, message.strip(), f" (x{n})" if n > 1 else "")


def load_pdf(path: Path, doc_id: str, source: str) -> Iterator[Document]:
    """One document per PDF; encrypted, corrupt and text-less (scanned) PDFs are skipped with a reason."""
    data = read_bytes(path)
    if not data.strip():
        raise SkipFile("empty")
    if not data.lstrip()[:5] == b"%PDF-":
        raise SkipFile("corrupt PDF (no %PDF- header)")
    with _pypdf_warnings_about(path):
        pages, meta_title = _read_pdf(data, path)
    text = "\n\n".join(pdf_paragraphs(page) for page in pages if page.strip())
    if not text:
        raise SkipFile("no text layer (scanned PDF?)")
    meta_title = " ".join((meta_title or "").split())
    if meta_title.lower() in PLACEHOLDER_TITLES:
        meta_title = ""
    title = meta_title or _first_line(text) or humanize_stem(path)
    yield Document(doc_id=doc_id, text=text, title=title, source=source, metadata={"pages": len(pages)})


def _read_pdf(data: bytes, path: Path) -> tuple[list[str], str | None]:
    """(text of each page, metadata title) of a PDF; SkipFile when it is locked or damaged."""
    import io

    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    # pypdf raises many exception types on damaged files; any of them means "corrupt" for one file.
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # An owner-password-only PDF opens with the empty user password; anything else is locked.
            try:
                if not reader.decrypt(""):
                    raise SkipFile("encrypted PDF (password required)")
            except (FileNotDecryptedError, NotImplementedError) as exc:
                raise SkipFile(f"encrypted PDF ({exc})") from None
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata is not None else None
    except SkipFile:
        raise
    except FileNotDecryptedError:
        raise SkipFile("encrypted PDF (password required)") from None
    except PdfReadError as exc:
        raise SkipFile(f"corrupt PDF ({exc})") from None
    except Exception as exc:  # see the comment above
        logger.debug("pypdf failed on %s", path, exc_info=True)
        raise SkipFile(f"corrupt PDF ({type(exc).__name__}: {exc})") from None
    return pages, meta_title
