"""Finding and loading documents from files and folders, reporting (never raising on) bad files."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from ragtune.errors import InputError
from ragtune.ingest.base import LoadResult, SkipFile, Skipped, bulk_progress
from ragtune.ingest.decoding import printable_name
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
BIG_FILE_MB = 10  # a file this large gets a warning up front: chunking and embedding it take minutes


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def discover_files(paths: Sequence[str | Path], follow_links: bool = False) -> list[tuple[Path, str]]:
    """(file, doc id) for every file under the given paths, in a stable order (see `discover`)."""
    return discover(paths, follow_links)[0]


def discover(paths: Sequence[str | Path], follow_links: bool = False) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """(file, doc id) for every file under the given paths, in a stable order, and the links not followed.

    A folder is walked recursively (hidden files and folders skipped); files under it are named by their
    posix path relative to it. A file given directly is named by its file name.
    Symbolic links: a linked file inside the given paths is read; a link leaving them, a linked folder and
    a broken link are reported as `Skipped`, one line each. With follow_links, links are followed wherever
    they point (a folder reached twice, e.g. through a link loop, is walked once).
    Raises InputError if a path does not exist.
    """
    if isinstance(paths, str | Path):  # a lone path, not a sequence of characters
        paths = [paths]
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise InputError(f"path not found: {', '.join(repr(m) for m in missing)}")
    roots = [Path(os.path.realpath(p)) for p in paths]

    def inside(target: Path) -> bool:
        return any(target == root or root in target.parents for root in roots)

    found: list[tuple[Path, str]] = []
    skipped: list[Skipped] = []
    for raw in paths:
        root = Path(raw)
        if not root.is_dir():
            found.append((root, root.name))
            continue
        walked = []
        visited = {Path(os.path.realpath(root))}
        for folder, dirnames, filenames in os.walk(root, followlinks=follow_links):
            keep = []
            for name in sorted(dirnames):
                path = Path(folder) / name
                if _is_hidden(name):
                    continue
                real = Path(os.path.realpath(path))
                if path.is_symlink():
                    reason = _folder_link_problem(real, follow_links, inside(real), real in visited)
                    if reason:
                        skipped.append(Skipped(printable_name(str(path)), reason))
                        continue
                visited.add(real)
                keep.append(name)
            dirnames[:] = keep
            for name in filenames:
                path = Path(folder) / name
                if _is_hidden(name):
                    continue
                if path.is_symlink():
                    reason = _file_link_problem(path, follow_links, inside)
                    if reason:
                        skipped.append(Skipped(printable_name(str(path)), reason))
                        continue
                walked.append((path, path.relative_to(root).as_posix()))
        found.extend(sorted(walked, key=lambda item: item[1]))
    return found, sorted(skipped, key=lambda s: s.path)


def _folder_link_problem(target: Path, follow_links: bool, inside: bool, seen: bool) -> str | None:
    if not follow_links:
        where = "inside the given paths (its files are read there)" if inside else "outside the given paths"
        return f"link to folder {target} {where}; not followed (--follow-links follows links)"
    if seen:
        return f"link to folder {target}, already walked (a link loop?); not followed again"
    return None


def _file_link_problem(path: Path, follow_links: bool, inside: Callable[[Path], bool]) -> str | None:
    target = Path(os.path.realpath(path))
    if not target.exists():
        return f"broken link to {target}"
    if not follow_links and not inside(target):
        return f"link to {target}, outside the given paths; not followed (--follow-links follows links)"
    return None


def load_file(path: Path, doc_id: str, source: str | None = None) -> Iterator[Document | Skipped]:
    """Documents of one file, with `doc_id` as its (base) id; problems come back as `Skipped`, never raised.

    `source` names the file in its documents and skip reports (default: `path` as given; a Ray worker reads an
    absolute path but reports the name the driver listed). A name with bytes that are not UTF-8 gives an id and
    source with backslash escapes (`printable_name`)."""
    doc_id, source = printable_name(doc_id), printable_name(str(path) if source is None else source)
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        kind = f"'{path.suffix}'" if path.suffix else "(no extension)"
        yield Skipped(source, f"unsupported file type {kind}; supported: {', '.join(SUPPORTED_EXTENSIONS)}")
        return
    if path.exists() and not path.is_file():  # a FIFO or device would block or never end
        yield Skipped(source, "not a regular file")
        return
    _warn_if_big(path)
    try:
        yield from loader(path, doc_id, source)
    except SkipFile as skip:
        yield Skipped(source, skip.reason)


def _warn_if_big(path: Path) -> None:
    try:
        megabytes = path.stat().st_size / (1024 * 1024)
    except OSError:
        return  # the loader reports why it cannot read the file
    if megabytes >= BIG_FILE_MB:
        logger.warning("%s is %.0f MB; chunking and embedding it takes a while", path.name, megabytes)


def iter_documents(paths: Sequence[str | Path], follow_links: bool = False) -> Iterator[Document | Skipped]:
    """Stream documents and skip reports from files and folders (see `load_documents`).

    A document whose id was already produced (e.g. the same file name given twice from different
    folders) is reported as skipped rather than silently replacing the first. Links not followed come first.
    """
    files, links = discover(paths, follow_links)
    with bulk_progress("Loading documents", total=len(files), minimum=20) as task:
        yield from merge_loaded(links, _load_each(files, task.advance))


def _load_each(files: Sequence[tuple[Path, str]], advance: Callable[[int], None]) -> Iterator[Iterator[Document | Skipped]]:
    for path, doc_id in files:
        yield load_file(path, doc_id)
        advance(1)  # runs once the file's items are consumed


def merge_loaded(links: Iterable[Skipped], loaded: Iterable[Iterable[Document | Skipped]]) -> Iterator[Document | Skipped]:
    """The stream `iter_documents` gives, from `discover`'s skipped links and each listed file's `load_file` items
    (in listing order; loaded anywhere, e.g. on Ray workers): links first, then the files' items, a document id
    produced twice reported as skipped. Every skip is logged."""
    for item in links:
        logger.info("skipped %s: %s", item.path, item.reason)
        yield item
    seen: dict[str, str] = {}
    for items in loaded:
        for item in items:
            if isinstance(item, Document):
                first = seen.get(item.doc_id)
                if first is None:
                    seen[item.doc_id] = item.source
                else:
                    item = Skipped(item.source, f"duplicate document id {item.doc_id!r} (first from {first})")
            if isinstance(item, Skipped):
                logger.info("skipped %s: %s", item.path, item.reason)
            yield item


def load_documents(paths: Sequence[str | Path], follow_links: bool = False) -> LoadResult:
    """Load .txt, .md/.markdown, .html/.htm, .pdf, .jsonl (incl. BEIR corpus.jsonl) and SQuAD .json.

    Folders are walked recursively (hidden files and folders ignored silently). Never raises for a bad
    file: it is reported in `skipped` and the rest is loaded. Symbolic links that leave the given paths,
    and linked folders, are reported and not followed unless `follow_links`. Raises InputError only if a
    given path does not exist.

    >>> result = load_documents(["docs/"])
    >>> [d.doc_id for d in result.documents]
    ['faq.md', 'policies/leave.md']
    """
    return LoadResult.of(iter_documents(paths, follow_links))
