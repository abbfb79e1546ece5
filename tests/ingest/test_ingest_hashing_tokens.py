"""Content hashes (stable, sensitive to visible changes only) and the embedder's token counter."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragtune.errors import ConfigError
from ragtune.ingest import HFTokenCounter, TokenCounter, WhitespaceTokenCounter, document_hash, load_tokenizer
from ragtune.types import Document

BASE = Document("a.md", "# Title\n\nSome text here.\nSecond line.", "Title", "docs/a.md", {"lang": "en", "n": 1})


def test_hash_is_sha256_hex_and_stable_across_processes():
    digest = document_hash(BASE)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    code = (
        "from ragtune.ingest import document_hash; from ragtune.types import Document; "
        "print(document_hash(Document('a.md', '# Title\\n\\nSome text here.\\nSecond line.', 'Title', 'docs/a.md', "
        "{'n': 1, 'lang': 'en'})))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == digest  # metadata key order and hash seed do not matter


@pytest.mark.parametrize(
    "same",
    [
        Document("other-id", BASE.text, BASE.title, "elsewhere/a.md", BASE.metadata),  # id and source excluded
        Document("a.md", BASE.text.replace("\n", "\r\n"), BASE.title, BASE.source, BASE.metadata),
        Document("a.md", BASE.text + "\n\n\n", BASE.title, BASE.source, BASE.metadata),
        Document("a.md", BASE.text.replace("\n\n", "  \n\n\n\n"), BASE.title, BASE.source, BASE.metadata),
        Document("a.md", BASE.text, " Title ", BASE.source, BASE.metadata),
    ],
)
def test_hash_ignores_invisible_differences(same: Document):
    assert document_hash(same) == document_hash(BASE)


@pytest.mark.parametrize(
    "changed",
    [
        Document("a.md", BASE.text.replace("Some", "More"), BASE.title, BASE.source, BASE.metadata),
        Document("a.md", BASE.text.replace("\n\n", "\n"), BASE.title, BASE.source, BASE.metadata),  # paragraphs
        Document("a.md", BASE.text, "Other title", BASE.source, BASE.metadata),
        Document("a.md", BASE.text, BASE.title, BASE.source, {"lang": "fr", "n": 1}),
        Document("a.md", BASE.text, BASE.title, BASE.source, {"lang": "en"}),
    ],
)
def test_hash_changes_with_content(changed: Document):
    assert document_hash(changed) != document_hash(BASE)


def test_bundled_tokenizer_counts_without_special_tokens_or_truncation():
    tok = load_tokenizer()
    assert isinstance(tok, HFTokenCounter) and isinstance(tok, TokenCounter)
    assert tok is load_tokenizer("bundled")  # cached per process
    assert tok.additive
    assert tok.count("Hello world.") == 3  # no [CLS]/[SEP], no padding to 128
    long = "word " * 500
    assert tok.count(long) == 500  # tokenizer.json truncates at 128; we must not
    assert tok.count_batch(["Hello world.", "", long]) == [3, 0, 500]
    assert tok.count_batch([]) == []
    assert tok.offsets("Hello, world") == [(0, 5), (5, 6), (7, 12)]


def test_load_tokenizer_from_a_folder(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"no tokenizer\.json"):
        load_tokenizer(str(tmp_path))
    with pytest.raises(ConfigError, match="not found"):
        load_tokenizer(str(tmp_path / "missing"))
    bundled = load_tokenizer()._tokenizer
    bundled.save(str(tmp_path / "tokenizer.json"))
    assert load_tokenizer(str(tmp_path)).count("Hello world.") == 3


def test_whitespace_counter():
    counter = WhitespaceTokenCounter()
    assert counter.count(" a  bc\nd ") == 3
    assert counter.count_batch(["a b", ""]) == [2, 0]
    assert counter.offsets("ab  c") == [(0, 2), (4, 5)]


def test_importing_ingest_stays_light():
    code = (
        "import sys, ragtune.ingest; "
        "print(','.join(m for m in ('torch', 'transformers', 'tokenizers', 'pypdf', 'bs4') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=60), min_size=1, max_size=8))
def test_word_cached_counts_equal_encoding_every_text(texts: list[str]):
    """count_batch of the bundled (additive) tokenizer sums cached per-word counts: exactly the tokenizer's count."""
    tokenizer = load_tokenizer()
    assert tokenizer.additive
    assert tokenizer.count_batch(texts) == tokenizer._encode_counts(texts)
    assert tokenizer.count_batch(texts) == [tokenizer.count(t) for t in texts]  # again, from the cache


def test_word_cached_counts_on_real_text(shared_data: Path):
    import json

    lines = (shared_data / "scifact" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:300]
    texts = [json.loads(line)["text"] for line in lines] + ["a\x1cb c", "\u4e2d\u6587 text", "x" * 300]
    tokenizer = load_tokenizer()
    assert tokenizer.count_batch(texts) == tokenizer._encode_counts(texts)
