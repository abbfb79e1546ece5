"""Tokenisation with the model's chat template, answer-only labels, and length-grouped dynamic batches.

The prompt is rendered with add_generation_prompt=True exactly as at inference and tokenised on its own; the
completion (the target plus the template's end-of-turn) is tokenised separately and appended. Labels are -100
on the prompt and on anything the template adds after the end-of-turn token, so the loss is on the answer only.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragtune.train.builders import TrainExample

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
_END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>")


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX outside the answer

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True)
class TokenizedSet:
    items: list[TokenizedExample]
    skipped: list[str]  # "example N: reason"


def end_of_turn_ids(tokenizer: Any) -> set[int]:
    """Token ids that close an assistant turn: eos plus the usual chat-template end tokens the vocab has."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in _END_OF_TURN_TOKENS if t in vocab)
    return ids


def tokenize_examples(train: Sequence[TrainExample], tokenizer: Any, max_len: int) -> TokenizedSet:
    """Tokenise once with the chat template; examples longer than max_len or with an empty answer are skipped
    (reported in `skipped`), never truncated: a cut answer would teach the wrong thing."""
    if getattr(tokenizer, "chat_template", None) is None:
        from ragtune.errors import ConfigError

        raise ConfigError(f"the tokenizer of {getattr(tokenizer, 'name_or_path', '?')!r} has no chat template")
    eot = end_of_turn_ids(tokenizer)
    items: list[TokenizedExample] = []
    skipped: list[str] = []
    prompts = [tokenizer.apply_chat_template(e.messages, tokenize=False, add_generation_prompt=True) for e in train]
    fulls = [
        tokenizer.apply_chat_template([*e.messages, {"role": "assistant", "content": e.target}], tokenize=False)
        for e in train
    ]
    completions = []
    for i, (prompt, full) in enumerate(zip(prompts, fulls)):
        if not full.startswith(prompt):
            # Templates that rewrite earlier turns (rare); fall back to locating the target text.
            at = full.find(train[i].target, len(prompt) // 2)
            completions.append(full[at:] if at >= 0 else "")
        else:
            completions.append(full[len(prompt) :])
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completions, add_special_tokens=False)["input_ids"]
    for i, (p_ids, c_ids) in enumerate(zip(prompt_ids, completion_ids)):
        if not train[i].target.strip() or not c_ids:
            skipped.append(f"example {i + 1}: empty answer")
            continue
        cut = next((j + 1 for j, t in enumerate(c_ids) if t in eot), len(c_ids))
        if cut <= 1 and len(c_ids) > 1:
            cut = len(c_ids)  # an end token at the very start would mean we found the wrong one
        total = len(p_ids) + len(c_ids)
        if total > max_len:
            skipped.append(f"example {i + 1}: {total} tokens > max_len {max_len}")
            continue
        labels = [IGNORE_INDEX] * len(p_ids) + list(c_ids[:cut]) + [IGNORE_INDEX] * (len(c_ids) - cut)
        items.append(TokenizedExample(list(p_ids) + list(c_ids), labels))
    if skipped:
        logger.warning("skipped %d of %d training examples (first: %s)", len(skipped), len(train), skipped[0])
    return TokenizedSet(items, skipped)


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, seed: int, *, bucket_batches: int = 32
) -> list[list[int]]:
    """Batches of indices with little padding: shuffle, cut into buckets of `bucket_batches` batches, sort each
    bucket by length, batch it, then shuffle the batches. Deterministic for a given seed."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    bucket = batch_size * bucket_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), bucket):
        group = sorted(order[start : start + bucket], key=lambda i: lengths[i], reverse=True)
        batches += [group[j : j + batch_size] for j in range(0, len(group), batch_size)]
    rng.shuffle(batches)
    return batches


def random_batches(n: int, batch_size: int, seed: int) -> list[list[int]]:
    """Plain shuffled batches (the baseline that pads to the longest of a random batch)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[j : j + batch_size] for j in range(0, n, batch_size)]


def split_by_tokens(batch: Sequence[int], lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Cut a batch (example indices) into micro-batches of at most `budget` padded tokens (rows x longest),
    longest first so each micro-batch pads little; an example longer than the budget goes alone. budget 0:
    the batch as it is."""
    if budget <= 0:
        return [list(batch)]
    micro: list[list[int]] = []
    for i in sorted(batch, key=lambda i: lengths[i], reverse=True):
        # Sorted longest first, the first row of a micro-batch is its widest: padded size = rows x that width.
        if micro and (len(micro[-1]) + 1) * lengths[micro[-1][0]] <= budget:
            micro[-1].append(i)
        else:
            micro.append([i])
    return micro


def collate(items: Sequence[TokenizedExample], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch to its own longest example: input_ids, attention_mask, labels as (batch, seq) tensors."""
    import torch

    width = max(len(x) for x in items)
    input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, item in enumerate(items):
        n = len(item)
        input_ids[row, :n] = torch.tensor(item.input_ids)
        labels[row, :n] = torch.tensor(item.labels)
        mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}
