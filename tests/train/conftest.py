"""Fixtures for the training tests: a tiny random Llama with a small offline tokenizer (seconds, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_CORPUS = [
    "You answer questions about the organisation's documents. Give the shortest answer that is correct.",
    "You answer questions using only the numbered sources. Give the shortest answer that is correct, then cite",
    "Question: Sources: Quote: Answer: the source number like [1] [2] [3] [4] [5]",
    "The quick brown fox jumps over the lazy dog. Who founded the company in 1998? Marta Ilves, in Tallinn.",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?'\"()-#",
]


def build_tiny_lm(folder: Path, seed: int = 0) -> Path:
    """A 2-layer random Llama and a byte-level BPE tokenizer with a ChatML template, saved to `folder`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS * 5, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|pad|>",
                                        bos_token="<|im_start|>")
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                         initializer_range=0.2, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def train_lm_dir(tmp_path_factory) -> Path:
    """A tiny random causal LM folder for training mechanics."""
    return build_tiny_lm(tmp_path_factory.mktemp("tiny_train_lm"))


@pytest.fixture
def tiny_lm_builder():
    """build_tiny_lm(folder, seed) as a fixture: importing it from conftest breaks when pytest collects
    several test folders with their own conftest modules in one run."""
    return build_tiny_lm


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run faster on one thread, and far faster when the machine's cores are oversubscribed."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
