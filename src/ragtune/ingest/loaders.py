"""Finding and loading documents from files and folders, reporting (never raising on) bad files."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from ragtune.errors import InputError
from ragtune.ingest.base import LoadResult, SkipFile, Skipped, bulk_progress
from ragtune.ingest.html import load_html
from ragtune.ingest.jsonl import load_jsonl
from ragtune.ingest.pdf import load_pdf
from ragtune.ingest.squad import load_squad
from ragtune.ingest.text import load_markdown, load_text
from ragtune.types import Document

logger = logging.getLogger(__name__)

Loader = Callable[[Path, str, str], Iterable["Document | Skipped"]]

LOADERS: dict[str, Loader] = {
    ".txt": load_text,
    ".text": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".jsonl": load_jsonl,
    ".json": load_squad,
}
SUPPORTED_EXTENSIONS = tuple(LOADERS)


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def discover_files(paths: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """(file, doc id) for every file under the given paths, in a stable order.

    A folder is walked recursively (hidden files and folders skipped); files under it are named by their
    posix path relative to it. A file given directly is named by its file name.
    Raises InputError if a path does not exist.
    """
    if isinstance(paths, str | Path):  # a lone path, not a sequence of characters
        paths = [paths]
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise InputError(f"path not found: {', '.join(repr(m) for m in missing)}")
    found: list[tuple[Path, str]] = []
    for raw in paths:
        root = Path(raw)
        if not root.is_dir():
            found.append((root, root.name))
            continue
        walked = []
        for folder, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not _is_hidden(d)]
            for name in filenames:
                if not _is_hidden(name):
                    path = Path(folder) / name
                    walked.append((path, path.relative_to(root).as_posix()))
        found.extend(sorted(walked, key=lambda item: item[1]))
    return found


def load_file(path: Path, doc_id: str) -> Iterator[Document | Skipped]:
    """Documents of one file, with `doc_id` as its (base) id; problems come back as `Skipped`, never raised."""
    source = str(path)
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        kind = f"'{path.suffix}'" if path.suffix else "(no extension)"
        yield Skipped(source, f"unsupported file type {kind}; supported: {', '.join(SUPPORTED_EXTENSIONS)}")
        return
    if path.exists() and not path.is_file():  # a FIFO or device would block or never end
        yield Skipped(source, "not a regular file")
        return
    try:
        yield from loader(path, doc_id, source)
    except SkipFile as skip:
        yield Skipped(source, skip.reason)


def iter_documents(paths: Sequence[str | Path]) -> Iterator[Document | Skipped]:
    """Stream documents and skip reports from files and folders (see `load_documents`).

    A document whose id was already produced (e.g. the same file name given twice from different
    folders) is reported as skipped rather than silently replacing the first.
    """
    files = discover_files(paths)
    seen: dict[str, str] = {}
    with bulk_progress("Loading documents", total=len(files), minimum=20) as task:
        for path, doc_id in files:
            for item in load_file(path, doc_id):
                if isinstance(item, Document):
                    first = seen.get(item.doc_id)
                    if first is None:
                        seen[item.doc_id] = item.source
                    else:
                        item = Skipped(item.source, f"duplicate document id {item.doc_id!r} (first from {first})")
                if isinstance(item, Skipped):
                    logger.info("skipped %s: %s", item.path, item.reason)
                yield item
            task.advance(1)


def load_documents(paths: Sequence[str | Path]) -> LoadResult:
    """Load .txt, .md/.markdown, .html/.htm, .pdf, .jsonl (incl. BEIR corpus.jsonl) and SQuAD .json.

    Folders are walked recursively (hidden files and folders ignored silently). Never raises for a bad
    file: it is reported in `skipped` and the rest is loaded. Raises InputError only if a given path does
    not exist.

    >>> result = load_documents(["docs/"])
    >>> [d.doc_id for d in result.documents]
    ['faq.md', 'policies/leave.md']
    """
    documents: list[Document] = []
    skipped: list[Skipped] = []
    for item in iter_documents(paths):
        (documents if isinstance(item, Document) else skipped).append(item)
    return LoadResult(documents=documents, skipped=skipped)
