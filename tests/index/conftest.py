"""Fixtures of the index tests: a tiny random BERT and its PyTorch mean-pooled reference vectors."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest

WORDS = ["leave", "paid", "days", "vpn", "portal", "how", "many", "the", "open", "first", "connect", "intranet"]


@pytest.fixture(scope="module")
def tiny_transformer(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A 2-layer random BERT with a word-level vocabulary: what a sentence-transformers Transformer exposes."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(WORDS) + 5, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    return SimpleNamespace(auto_model=BertModel(config).eval(), tokenizer=tokenizer)


def _torch_reference(transformer: SimpleNamespace, texts: list[str]) -> np.ndarray:
    """Mean pooling + L2 normalisation of the transformer's output: what the exported graph must compute."""
    import torch

    features = transformer.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = transformer.auto_model(**features).last_hidden_state
    mask = features["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=1).numpy()


@pytest.fixture
def torch_reference() -> Callable[[SimpleNamespace, list[str]], np.ndarray]:
    return _torch_reference
