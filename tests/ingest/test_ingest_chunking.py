"""Chunking: size limit, overlap, heading boundaries, no lost text; with the real tokenizer and a word counter."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragtune.config import ChunkConfig
from ragtune.ingest import (
    WhitespaceTokenCounter,
    chunk_document,
    chunk_documents,
    load_documents,
    load_tokenizer,
    split_sentences,
)
from ragtune.types import Document


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def words(text: str) -> list[str]:
    return text.split()


def assert_covers_in_order(doc_text: str, chunks: Sequence[str]) -> None:
    """Chunks, as word sequences, tile the document's words in order: each starts where or before the last
    ended, and together they reach from the first word to the last (no text lost, nothing invented)."""
    doc = words(doc_text)
    states = {(0, 0)}  # (start of the last chunk, end of the covered prefix); repeated words need a search
    for chunk in chunks:
        piece = words(chunk)
        states = {
            (p, p + len(piece))
            for start, end in states
            for p in range(start, end + 1)
            if p + len(piece) > end and doc[p : p + len(piece)] == piece  # each chunk adds new text
        }
        assert states, f"chunk not found in order: {chunk!r}"
    assert any(end == len(doc) for _, end in states)


def test_short_document_is_one_chunk_with_doc_fields(tokenizer):
    doc = Document("faq.md", "Hello   world.\nSecond line.", "FAQ", "docs/faq.md", {"lang": "en"})
    chunks = chunk_document(doc, ChunkConfig(), tokenizer)
    assert len(chunks) == 1
    chunk = chunks[0]
    assert (chunk.chunk_id, chunk.doc_id, chunk.position) == ("faq.md#0", "faq.md", 0)
    assert chunk.text == "Hello world. Second line."  # whitespace normalised
    assert (chunk.title, chunk.source, chunk.metadata) == ("FAQ", "docs/faq.md", {"lang": "en"})


def test_empty_document_has_no_chunks(tokenizer):
    assert chunk_document(Document("e", "  \n\n "), ChunkConfig(), tokenizer) == []


def long_text(paragraphs: int = 12, sentences: int = 6) -> str:
    return "\n\n".join(
        " ".join(
            f"Paragraph {p} sentence {s} talks about item number {p * 10 + s} in detail." for s in range(sentences)
        )
        for p in range(paragraphs)
    )


@pytest.mark.parametrize(("size", "overlap"), [(200, 32), (64, 16), (32, 0), (16, 8)])
def test_no_chunk_exceeds_limit_and_no_text_lost(tokenizer, size: int, overlap: int):
    text = (
        long_text() + "\n\n" + " ".join(["run-on"] * 150) + "\n\n" + "Pneumonoultramicroscopicsilicovolcanoconiosis" * 8
    )
    doc = Document("long", text)
    chunks = chunk_document(doc, ChunkConfig(chunk_tokens=size, overlap_tokens=overlap), tokenizer)
    counts = tokenizer.count_batch([c.text for c in chunks])
    assert max(counts) <= size
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert [c.chunk_id for c in chunks] == [f"long#{i}" for i in range(len(chunks))]
    for paragraph in text.split("\n\n")[:-2]:
        for sentence in split_sentences(paragraph):
            assert any(sentence in c.text for c in chunks), sentence
    assert_covers_in_order(text, [c.text for c in chunks])


def test_giant_word_is_cut_on_token_boundaries(tokenizer):
    # no whitespace at all (WordPiece turns a single word over 100 characters into one [UNK] token)
    word = "https://example.com/" + "/".join(f"part{i}" for i in range(40))
    chunks = chunk_document(Document("w", word), ChunkConfig(chunk_tokens=32, overlap_tokens=0), tokenizer)
    assert len(chunks) >= 4
    assert "".join(c.text for c in chunks) == word  # every character survives, in order
    assert all(0 < tokenizer.count(c.text) <= 32 for c in chunks)


def test_whole_paragraphs_are_packed_greedily(tokenizer):
    paragraphs = [f"Block {i} has a few words in it." for i in range(10)]  # 9 tokens each
    doc = Document("d", "\n\n".join(paragraphs))
    chunks = chunk_document(doc, ChunkConfig(chunk_tokens=30, overlap_tokens=0), tokenizer)
    assert [c.text.split("\n\n") for c in chunks] == [paragraphs[0:3], paragraphs[3:6], paragraphs[6:9], paragraphs[9:]]


def test_overlap_repeats_whole_tail_sentences(tokenizer):
    sentences = [f"Fact {i} is short." for i in range(40)]  # 5 tokens each
    doc = Document("d", " ".join(sentences))
    chunks = chunk_document(doc, ChunkConfig(chunk_tokens=40, overlap_tokens=12), tokenizer)
    assert len(chunks) > 3
    for prev, nxt in itertools.pairwise(chunks):
        prev_sentences = split_sentences(prev.text)
        next_sentences = split_sentences(nxt.text)
        # 12 tokens of overlap = the two last whole sentences (10 tokens) of the previous chunk
        assert next_sentences[:2] == prev_sentences[-2:]
        assert next_sentences[2] not in prev_sentences
    assert_covers_in_order(doc.text, [c.text for c in chunks])


def test_overlap_of_a_long_last_sentence_is_a_token_window(tokenizer):
    long_sentence = "This one sentence goes on " + "and on " * 20 + "until it ends."
    doc = Document("d", long_sentence + "\n\n" + "Next paragraph starts here.")
    chunks = chunk_document(doc, ChunkConfig(chunk_tokens=50, overlap_tokens=8), tokenizer)
    assert len(chunks) == 2
    head = chunks[1].text.split("\n\n")[0]
    assert long_sentence.endswith(head) and 0 < tokenizer.count(head) <= 8
    assert chunks[1].text.endswith("Next paragraph starts here.")


def test_heading_starts_a_new_chunk_when_half_full(tokenizer):
    intro = " ".join(f"Leave rule {i} applies." for i in range(6))  # 6 x 5 = 30 tokens
    text = f"# Leave\n\n{intro}\n\n# Pay\n\nSalaries are paid monthly.\n\n## Bonus\n\nBonuses are yearly."
    chunks = chunk_document(Document("hr.md", text), ChunkConfig(chunk_tokens=60, overlap_tokens=0), tokenizer)
    assert [c.text.split("\n\n")[0] for c in chunks] == ["# Leave", "# Pay"]
    assert chunks[1].text == "# Pay\n\nSalaries are paid monthly.\n\n## Bonus\n\nBonuses are yearly."
    assert [c.metadata["section"] for c in chunks] == ["Leave", "Pay"]


def test_heading_is_kept_with_its_paragraph_and_section_ignores_overlap(tokenizer):
    first = "Alpha is the first topic here."  # 7 tokens
    second = " ".join(f"Beta fact {i} holds." for i in range(5))  # 25 tokens
    text = f"{first}\n\n# Beta\n\n{second}"
    chunks = chunk_document(
        Document("d", text, metadata={"k": 1}), ChunkConfig(chunk_tokens=30, overlap_tokens=8), tokenizer
    )
    assert len(chunks) == 2
    assert chunks[0].text == first and chunks[0].metadata == {"k": 1}  # no heading yet: no section
    assert "# Beta" in chunks[1].text and chunks[1].metadata == {"k": 1, "section": "Beta"}


def test_hash_lines_in_code_fences_are_not_headings(tokenizer):
    text = "# Setup\n\nRun this:\n\n```bash\n# install first\npip install ragtune\n```\n\nDone."
    chunks = chunk_document(Document("d", text), ChunkConfig(), tokenizer)
    assert len(chunks) == 1 and chunks[0].metadata == {"section": "Setup"}
    assert "```bash # install first pip install ragtune ```" in " ".join(chunks[0].text.split())


def test_chunk_documents_matches_per_document_chunking(tokenizer):
    docs = [Document(f"d{i}", long_text(paragraphs=i + 1), title=f"T{i}") for i in range(3)]
    config = ChunkConfig(chunk_tokens=48, overlap_tokens=8)
    together = chunk_documents(docs, config, tokenizer)
    assert together == [c for d in docs for c in chunk_document(d, config, tokenizer)]
    assert {c.title for c in together} == {"T0", "T1", "T2"}


class CharCounter:
    """A non-additive tokenizer: one token per 3 characters of the whole text, spaces included."""

    def count(self, text: str) -> int:
        return math.ceil(len(text) / 3)

    def count_batch(self, texts):
        return [self.count(t) for t in texts]

    def offsets(self, text: str):
        return [(i, min(i + 3, len(text))) for i in range(0, len(text), 3)]


def test_non_additive_tokenizer_still_respects_the_limit():
    doc = Document("d", long_text(paragraphs=4))
    counter = CharCounter()
    chunks = chunk_document(doc, ChunkConfig(chunk_tokens=40, overlap_tokens=10), counter)
    assert len(chunks) > 5
    assert max(counter.count(c.text) for c in chunks) <= 40


word = st.one_of(st.sampled_from(["alpha", "beta", "gamma", "x", "word-y", "(z9)"]), st.integers(0, 99).map(str))
paragraph = st.lists(st.lists(word, min_size=1, max_size=30), min_size=1, max_size=4).map(
    lambda sents: " ".join(" ".join(s) + "." for s in sents)
)
heading = st.sampled_from(["# Intro", "## Details", "### Notes"])
document = st.lists(st.one_of(paragraph, paragraph, heading), min_size=1, max_size=8).map("\n\n".join)


@settings(max_examples=60, deadline=None)
@given(text=document, size=st.integers(16, 60), overlap_fraction=st.floats(0, 0.9))
def test_property_limit_and_coverage(text: str, size: int, overlap_fraction: float):
    overlap = min(size - 1, int(size * overlap_fraction))
    counter = WhitespaceTokenCounter()
    chunks = chunk_document(Document("p", text), ChunkConfig(chunk_tokens=size, overlap_tokens=overlap), counter)
    assert chunks
    assert all(counter.count(c.text) <= size for c in chunks)
    assert_covers_in_order(text, [c.text for c in chunks])


@settings(max_examples=25, deadline=None)
@given(text=document, size=st.integers(16, 80), overlap_fraction=st.floats(0, 0.5))
def test_property_limit_and_coverage_real_tokenizer(tokenizer, text: str, size: int, overlap_fraction: float):
    overlap = min(size - 1, int(size * overlap_fraction))
    chunks = chunk_document(Document("p", text), ChunkConfig(chunk_tokens=size, overlap_tokens=overlap), tokenizer)
    assert max(tokenizer.count_batch([c.text for c in chunks])) <= size
    assert_covers_in_order(text, [c.text for c in chunks])


def test_scifact_subset_chunks_fit_and_cover(shared_data: Path, tokenizer):
    docs = load_documents([shared_data / "scifact" / "corpus.jsonl"]).documents[:300]
    chunks = chunk_documents(docs, ChunkConfig(), tokenizer)
    assert len(chunks) > len(docs)
    assert max(tokenizer.count_batch([c.text for c in chunks])) <= 200
    for doc in docs[:50]:
        mine = [c.text for c in chunks if c.doc_id == doc.doc_id]
        assert_covers_in_order(doc.text, mine)


def test_big_text_encodes_each_distinct_word_once(monkeypatch: pytest.MonkeyPatch):
    """Issue #12 item 11: a 30 MB file spent minutes re-encoding every sentence; counts now come from
    per-word counts, so the tokenizer sees each distinct word once however long the text is."""
    from ragtune.ingest import HFTokenCounter

    fresh = HFTokenCounter(load_tokenizer()._tokenizer)
    encoded: list[str] = []
    original = fresh._encode_counts

    def spy(texts):
        encoded.extend(texts)
        return original(texts)

    monkeypatch.setattr(fresh, "_encode_counts", spy)
    paragraph = "The quick brown fox jumps over the lazy dog. Employees get thirty days of paid leave!"
    text = "\n\n".join([paragraph] * 3000)
    chunks = chunk_document(Document("big", text), ChunkConfig(chunk_tokens=64, overlap_tokens=8), fresh)
    assert len(chunks) == 1000 and all(fresh.count(c.text) <= 64 for c in chunks[:50])
    distinct = set(paragraph.split())
    assert set(encoded) == distinct and len(encoded) == len(distinct)


def test_big_file_is_announced_with_its_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog):
    import logging

    from ragtune.ingest import loaders

    monkeypatch.setattr(loaders, "BIG_FILE_MB", 0.5)
    (tmp_path / "big.txt").write_text("Words in a big file.\n\n" * 40000)  # 0.84 MB
    (tmp_path / "small.txt").write_text("Small.\n")
    with caplog.at_level(logging.WARNING, logger="ragtune.ingest.loaders"):
        result = load_documents([tmp_path])
    assert len(result.documents) == 2
    assert [r.getMessage() for r in caplog.records] == ["big.txt is 1 MB; chunking and embedding it takes a while"]
