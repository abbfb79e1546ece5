"""Chat-template tokenisation with answer-only labels, and length-grouped batching."""

from __future__ import annotations

import pytest

from ragtune.generate.prompts import build_messages
from ragtune.train.builders import TrainExample
from ragtune.train.collate import (
    IGNORE_INDEX,
    collate,
    length_grouped_batches,
    random_batches,
    tokenize_examples,
)


@pytest.fixture(scope="module")
def tokenizer(train_lm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(train_lm_dir))


def test_labels_cover_only_the_answer_and_end_of_turn(tokenizer):
    example = TrainExample(build_messages("Who founded the company?", None), "Marta Ilves")
    item = tokenize_examples([example], tokenizer, max_len=512).items[0]
    full = tokenizer.apply_chat_template([*example.messages, {"role": "assistant", "content": example.target}],
                                         tokenize=False)
    assert tokenizer.decode(item.input_ids) == full
    answer = [t for t in item.labels if t != IGNORE_INDEX]
    assert tokenizer.decode(answer) == "Marta Ilves<|im_end|>"
    n_prompt = item.labels.index(answer[0])
    prompt = tokenizer.apply_chat_template(example.messages, tokenize=False, add_generation_prompt=True)
    assert tokenizer.decode(item.input_ids[:n_prompt]) == prompt
    assert item.labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert item.labels[-1] == IGNORE_INDEX  # the template's trailing newline after <|im_end|> is not learned


def test_too_long_and_empty_examples_are_skipped(tokenizer):
    short = TrainExample(build_messages("Q?", None), "A")
    long = TrainExample(build_messages("word " * 400, None), "A")
    empty = TrainExample(build_messages("Q?", None), "  ")
    result = tokenize_examples([short, long, empty], tokenizer, max_len=200)
    assert len(result.items) == 1
    assert result.skipped[0].startswith("example 2:") and "> max_len 200" in result.skipped[0]
    assert result.skipped[1] == "example 3: empty answer"


def test_length_grouped_batches_cut_padding():
    lengths = [(i * 37) % 500 + 20 for i in range(400)]
    batches = length_grouped_batches(lengths, batch_size=8, seed=0)
    assert sorted(i for b in batches for i in b) == list(range(400))
    assert batches == length_grouped_batches(lengths, batch_size=8, seed=0)
    assert batches != length_grouped_batches(lengths, batch_size=8, seed=1)

    def padded(bs):
        return sum(max(lengths[i] for i in b) * len(b) for b in bs)

    real = sum(lengths)
    grouped_waste = padded(batches) / real - 1
    random_waste = padded(random_batches(400, 8, seed=0)) / real - 1
    assert grouped_waste < 0.05 < random_waste
    assert sorted(len(b) for b in batches)[-1] == 8


def test_collate_pads_to_batch_max(tokenizer):
    examples = [TrainExample(build_messages(q, None), a) for q, a in [("Q?", "A"), ("A longer question here?", "B C")]]
    items = tokenize_examples(examples, tokenizer, 512).items
    batch = collate(items, pad_id=tokenizer.pad_token_id)
    width = max(len(x) for x in items)
    assert tuple(batch["input_ids"].shape) == (2, width)
    short = min(range(2), key=lambda i: len(items[i]))
    n = len(items[short])
    assert batch["attention_mask"][short].tolist() == [1] * n + [0] * (width - n)
    assert batch["labels"][short, n:].tolist() == [IGNORE_INDEX] * (width - n)
    assert batch["input_ids"][short, n:].tolist() == [tokenizer.pad_token_id] * (width - n)
