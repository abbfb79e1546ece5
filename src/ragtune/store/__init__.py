"""Storage engines behind an index: the VectorStore protocol, a registry by URI scheme, and the backends
(Milvus in ragtune.store.milvus, PostgreSQL/pgvector in ragtune.store.postgres), each an optional extra.

Importing this package is light: a backend's client library loads only when its URI is opened.
"""

from ragtune.store.base import ACCESS_FIELD, StoreConfig, StoredDocument, VectorStore
from ragtune.store.registry import is_store_uri, open_store, register_store_scheme, with_collection

__all__ = [
    "ACCESS_FIELD",
    "StoreConfig",
    "StoredDocument",
    "VectorStore",
    "is_store_uri",
    "open_store",
    "register_store_scheme",
    "with_collection",
]
