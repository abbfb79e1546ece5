"""The index folder: documents, chunks and vectors with atomic commits; dense (exact/HNSW) and BM25 search.

Importing this package is light; torch, sentence-transformers, bm25s and faiss load only when used.
"""

from ragtune.index.embed import Embedder, HashEmbedder, get_embedder
from ragtune.index.hooks import on_commit
from ragtune.index.state import DocumentInfo, IndexState, IngestStats
from ragtune.index.store import Index

__all__ = ["DocumentInfo", "Embedder", "HashEmbedder", "Index", "IndexState", "IngestStats", "get_embedder", "on_commit"]
