"""Ingestion: loading documents from files and folders, chunking them by tokens, hashing their content.

>>> from ragtune.ingest import load_documents, chunk_documents, load_tokenizer
>>> result = load_documents(["docs/"])
>>> chunks = chunk_documents(result.documents, ChunkConfig(), load_tokenizer())

Importing this package is light: pypdf, BeautifulSoup and tokenizers load only when used.
"""

from ragtune.ingest.base import LoadResult, Skipped, TokenCounter
from ragtune.ingest.chunking import chunk_document, chunk_documents, split_blocks
from ragtune.text import split_sentences
from ragtune.ingest.hashing import document_hash, normalize_content
from ragtune.ingest.loaders import (
    SUPPORTED_EXTENSIONS, discover, discover_files, iter_documents, load_documents, load_file, merge_loaded,
)
from ragtune.ingest.tokens import HFTokenCounter, WhitespaceTokenCounter, load_tokenizer

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "HFTokenCounter",
    "LoadResult",
    "Skipped",
    "TokenCounter",
    "WhitespaceTokenCounter",
    "chunk_document",
    "chunk_documents",
    "discover",
    "discover_files",
    "document_hash",
    "iter_documents",
    "load_documents",
    "load_file",
    "load_tokenizer",
    "merge_loaded",
    "normalize_content",
    "split_blocks",
    "split_sentences",
]
