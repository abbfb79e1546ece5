"""Token-based chunking that respects headings, paragraphs and sentences.

A document is cut into blocks (Markdown '#' heading lines; paragraphs separated by blank lines), blocks
into sentences, and a sentence longer than a chunk into token windows. Whole blocks are packed greedily up
to `chunk_tokens`; a heading starts a new chunk once the current one is half full; an oversized block is
packed sentence by sentence. Each chunk after the first starts with about `overlap_tokens` of the previous
chunk's tail (whole sentences where possible). No chunk exceeds `chunk_tokens` as counted by the tokenizer,
and no text is lost.

Token counts are taken once per sentence, in batches (`count_batch`), and summed: exact for WordPiece
(BERT) tokenizers, whose pre-tokenizer splits on whitespace (`tokenizer.additive`). For other tokenizers
every finished chunk is recounted in one batch and cut further if it is over the limit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ragtune.config import ChunkConfig
from ragtune.ingest.base import TokenCounter, bulk_progress
from ragtune.ingest.hashing import normalize_content
from ragtune.text import split_sentences
from ragtune.types import Chunk, Document

logger = logging.getLogger(__name__)

_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")  # inside a fenced code block '# x' is a comment, not a heading
_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_COUNT_BATCH = 4096
_MB = 1024 * 1024
PROGRESS_MIN_MB = 1.0  # below this much text chunking shows no bar


@dataclass(frozen=True, slots=True)
class _Block:
    sentences: tuple[str, ...]
    section: str | None  # the heading in effect (a heading block's own text)
    heading: bool


@dataclass(frozen=True, slots=True)
class _Unit:
    """A piece that is never cut further when packing: a sentence, a heading line or a token window."""

    text: str
    tokens: int
    block: int  # units of the same block are joined by a space, of different blocks by a blank line
    section: str | None
    heading: bool = False


def split_blocks(text: str) -> list[_Block]:
    """Blocks of a text: heading lines and paragraphs (whitespace collapsed), each split into sentences."""
    blocks: list[_Block] = []
    section: str | None = None
    lines: list[str] = []

    def flush() -> None:
        paragraph = " ".join(" ".join(lines).split())
        lines.clear()
        if paragraph:
            blocks.append(_Block(tuple(split_sentences(paragraph)), section, False))

    in_fence = False
    for line in normalize_content(text).split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match and match.group(2).strip():
            flush()
            section = " ".join(match.group(2).split())
            blocks.append(_Block((f"{match.group(1)} {section}",), section, True))
        elif not line.strip():
            flush()
        else:
            lines.append(line)
    flush()
    return blocks


def _word_start(offsets: list[tuple[int, int]], i: int) -> bool:
    """Whether token i begins a new word (something, usually a space, separates it from token i-1)."""
    return i == 0 or offsets[i][0] > offsets[i - 1][1]


def split_windows(text: str, limit: int, tokenizer: TokenCounter) -> list[tuple[str, int]]:
    """(piece, tokens) windows of at most `limit` tokens, cut on token (preferably word) boundaries.

    Every character of `text` lands in a piece except the whitespace at the cuts.
    """
    offsets = tokenizer.offsets(text)
    pieces: list[tuple[str, int]] = []
    start, n, char_start = 0, len(offsets), 0
    while start < n:
        end = min(start + limit, n)
        while True:
            cut = end
            if end < n:  # back off to a word start, unless the word alone is longer than a window
                while cut > start + 1 and not _word_start(offsets, cut):
                    cut -= 1
                if cut == start + 1 and not _word_start(offsets, cut):
                    cut = end
            char_end = offsets[cut][0] if cut < n else len(text)
            piece = text[char_start:char_end].strip()
            tokens = tokenizer.count(piece)
            if tokens <= limit or end - start <= 1:
                break
            end -= max(1, tokens - limit)  # re-tokenising a cut piece can change its count
        if piece:
            pieces.append((piece, tokens))
        start, char_start = cut, char_end
    return pieces


def _tail_window(unit: _Unit, overlap: int, tokenizer: TokenCounter) -> _Unit | None:
    """The last ~`overlap` tokens of a unit, starting at a word start (at most 2x `overlap` tokens), or None."""
    offsets = tokenizer.offsets(unit.text)
    n = len(offsets)
    first = max(0, n - overlap)
    starts = [i for i in range(first, n) if _word_start(offsets, i)]
    if not starts:  # the tail is inside one long word: back up to its start if that is not too far
        starts = [i for i in range(first - 1, max(-1, n - 2 * overlap - 1), -1) if _word_start(offsets, i)][:1]
    if not starts:
        return None
    text = unit.text[offsets[starts[0]][0] :].strip()
    tokens = n - starts[0] if getattr(tokenizer, "additive", False) else tokenizer.count(text)
    if not text or tokens > 2 * overlap:
        return None
    return _Unit(text, tokens, unit.block, unit.section, unit.heading)


class _Packer:
    """Greedy packing of one document's units into chunks; overlap carried from each chunk's tail."""

    def __init__(self, limit: int, overlap: int, tokenizer: TokenCounter):
        self.limit, self.overlap, self.tokenizer = limit, overlap, tokenizer
        self.chunks: list[tuple[list[_Unit], int]] = []  # (units, how many leading units are overlap)
        self.units: list[_Unit] = []
        self.n_overlap = 0
        self.tokens = 0

    @property
    def has_own(self) -> bool:
        return len(self.units) > self.n_overlap

    def add(self, units: Sequence[_Unit]) -> None:
        self.units.extend(units)
        self.tokens += sum(u.tokens for u in units)

    def flush(self) -> None:
        if not self.has_own:
            return
        self.chunks.append((self.units, self.n_overlap))
        tail = self._tail(self.units)
        self.units, self.n_overlap = list(tail), len(tail)
        self.tokens = sum(u.tokens for u in tail)

    def make_room(self, need: int) -> None:
        """Drop overlap units from the front until `need` more tokens fit."""
        while self.n_overlap and self.tokens + need > self.limit:
            self.tokens -= self.units.pop(0).tokens
            self.n_overlap -= 1

    def fits(self, need: int) -> bool:
        return self.tokens + need <= self.limit

    def _tail(self, units: list[_Unit]) -> list[_Unit]:
        if self.overlap <= 0:
            return []
        picked: list[_Unit] = []
        total = 0
        for unit in reversed(units):
            if total + unit.tokens > self.overlap:
                break
            picked.append(unit)
            total += unit.tokens
        if picked:
            return picked[::-1]
        window = _tail_window(units[-1], self.overlap, self.tokenizer)
        return [window] if window else []


def _groups(blocks: list[list[_Unit]]) -> list[list[_Unit]]:
    """Blocks to pack as one: a run of headings travels with the block it introduces."""
    groups: list[list[_Unit]] = []
    pending: list[_Unit] = []
    for block in blocks:
        pending.extend(block)
        if not block[0].heading:
            groups.append(pending)
            pending = []
    if pending:
        groups.append(pending)
    return groups


def _pack(
    blocks: list[list[_Unit]], limit: int, overlap: int, tokenizer: TokenCounter
) -> list[tuple[list[_Unit], int]]:
    packer = _Packer(limit, overlap, tokenizer)
    for group in _groups(blocks):
        size = sum(u.tokens for u in group)
        if group[0].heading and packer.has_own and packer.tokens >= limit / 2:
            packer.flush()
        if packer.fits(size):
            packer.add(group)
            continue
        packer.flush()
        if size <= limit:  # the group fits a fresh chunk: give up overlap rather than cut it
            packer.make_room(size)
            packer.add(group)
            continue
        for unit in group:
            if not packer.fits(unit.tokens):
                packer.flush()
                packer.make_room(unit.tokens)
            packer.add([unit])
    packer.flush()
    return packer.chunks


def _join(units: Sequence[_Unit]) -> str:
    parts: list[str] = []
    for i, unit in enumerate(units):
        if i:
            parts.append(" " if unit.block == units[i - 1].block else "\n\n")
        parts.append(unit.text)
    return "".join(parts)


def _count_all(texts: list[str], tokenizer: TokenCounter, task: object) -> list[int]:
    counts: list[int] = []
    for i in range(0, len(texts), _COUNT_BATCH):
        batch = texts[i : i + _COUNT_BATCH]
        counts.extend(tokenizer.count_batch(batch))
        task.advance(sum(map(len, batch)) / _MB)  # type: ignore[attr-defined]
    return counts


def chunk_documents(docs: Sequence[Document], config: ChunkConfig, tokenizer: TokenCounter) -> list[Chunk]:
    """Chunks of every document, in order (see the module docstring for the rules).

    Token counting is batched across all documents, so this is fast on large corpora.

    >>> chunks = chunk_documents(docs, ChunkConfig(chunk_tokens=200, overlap_tokens=32), load_tokenizer())
    """
    limit, overlap = config.chunk_tokens, config.overlap_tokens
    parsed = [split_blocks(doc.text) for doc in docs]
    sentences = [s for blocks in parsed for block in blocks for s in block.sentences]
    megabytes = sum(map(len, sentences)) / _MB
    with bulk_progress("Chunking (MB of text)", total=round(megabytes, 1), minimum=PROGRESS_MIN_MB) as task:
        counts = iter(_count_all(sentences, tokenizer, task))
        packed: list[tuple[Document, list[tuple[list[_Unit], int]]]] = []
        for doc, blocks in zip(docs, parsed, strict=True):
            unit_blocks: list[list[_Unit]] = []
            for b, block in enumerate(blocks):
                units: list[_Unit] = []
                for sentence in block.sentences:
                    tokens = next(counts)
                    if tokens <= limit:
                        units.append(_Unit(sentence, tokens, b, block.section, block.heading))
                    else:
                        units.extend(
                            _Unit(piece, n, b, block.section, block.heading)
                            for piece, n in split_windows(sentence, limit, tokenizer)
                        )
                if units:
                    unit_blocks.append(units)
            packed.append((doc, _pack(unit_blocks, limit, overlap, tokenizer)))
    if getattr(tokenizer, "additive", False):
        totals = iter([sum(u.tokens for u in units) for _, chunks in packed for units, _ in chunks])
    else:
        totals = iter(tokenizer.count_batch([_join(units) for _, chunks in packed for units, _ in chunks]))
    result: list[Chunk] = []
    for doc, chunks in packed:
        position = 0
        for units, n_overlap in chunks:
            text, tokens = _join(units), next(totals)
            section = units[n_overlap].section
            extra = {} if section is None else {"section": section}
            # Sums of sentence counts are exact for WordPiece; other tokenizers may need one more cut.
            pieces = [text] if tokens <= limit else [p for p, _ in split_windows(text, limit, tokenizer)]
            if len(pieces) > 1:
                logger.debug("chunk %s#%d recut: %d tokens > %d", doc.doc_id, position, tokens, limit)
            for piece in pieces:
                result.append(
                    Chunk(
                        chunk_id=f"{doc.doc_id}#{position}",
                        doc_id=doc.doc_id,
                        text=piece,
                        title=doc.title,
                        position=position,
                        source=doc.source,
                        metadata={**doc.metadata, **extra},  # a dict per chunk: never shared
                    )
                )
                position += 1
    return result


def chunk_document(doc: Document, config: ChunkConfig, tokenizer: TokenCounter) -> list[Chunk]:
    """Chunks of one document: ids f"{doc_id}#{position}", the document's title, source and metadata
    (plus {"section": nearest heading} when there is one)."""
    return chunk_documents([doc], config, tokenizer)
