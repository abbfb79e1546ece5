"""Lean training: answer-only loss and its gradients equal the full-logits loss, token-budget micro-batches
and gradient checkpointing give the gradient of one big batch, and the plan keeps every example."""

from __future__ import annotations

import pytest

from ragtune.train import FinetuneConfig, build_sft_examples
from ragtune.train.collate import collate, split_by_tokens, tokenize_examples
from ragtune.train.lora_model import answer_loss_sum, enable_checkpointing, set_checkpointing
from ragtune.train.trainer import _train_step, plan_steps
from ragtune.types import Example


def _items(lm_dir, n=5):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(lm_dir))
    # Questions of different lengths: micro-batches pad differently from one big batch.
    examples = [Example(question="Where is room " + "very " * (3 * i) + f"{i}?", answer=f"R{i}-K{i * 7} wing")
                for i in range(n)]
    return tokenize_examples(build_sft_examples(examples), tokenizer, 512).items, tokenizer.pad_token_id


def _model(lm_dir):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(str(lm_dir), dtype=torch.float64)  # float64: exact comparisons


def _grads(model):
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def _assert_same_grads(a, b, tol):
    import torch

    assert a.keys() == b.keys() and len(a) > 10
    for name in a:
        assert torch.allclose(a[name], b[name], atol=tol, rtol=tol), name


def test_answer_only_loss_and_gradients_equal_the_full_logits_loss(train_lm_dir):
    import torch

    items, pad_id = _items(train_lm_dir)
    batch = collate(items, pad_id)
    model = _model(train_lm_dir).eval()
    reference = model(**batch).loss  # HF: full (batch, seq, vocab) logits, mean over labelled positions
    reference.backward()
    expected = _grads(model)
    model.zero_grad()
    n_answer = int((batch["labels"][:, 1:] != -100).sum())
    ours = answer_loss_sum(model, batch) / n_answer
    ours.backward()
    assert abs(float(ours.detach()) - float(reference.detach())) < 1e-5
    _assert_same_grads(_grads(model), expected, 1e-5)
    assert torch.count_nonzero(expected["lm_head.weight"]) > 0  # the head is trained through the gathered rows


def test_token_budget_micro_batches_give_the_gradient_of_one_big_batch(train_lm_dir):
    items, pad_id = _items(train_lm_dir)
    lengths = [len(x) for x in items]
    model = _model(train_lm_dir).eval()
    history = {"tokens": 0, "answer_tokens": 0}
    whole = _train_step(model, [items], pad_id, "cpu", False, history)
    expected = _grads(model)
    model.zero_grad()
    micro = split_by_tokens(range(len(items)), lengths, 2 * max(lengths))
    assert 1 < len(micro) < len(items)
    history_micro = {"tokens": 0, "answer_tokens": 0}
    split = _train_step(model, [[items[i] for i in mb] for mb in micro], pad_id, "cpu", False, history_micro)
    # The loss is computed in float32 (logits.float()), so agreement is to float32 precision.
    assert split == pytest.approx(whole, rel=1e-6)
    _assert_same_grads(_grads(model), expected, 1e-5)
    assert history_micro["tokens"] == history["tokens"] and history_micro["answer_tokens"] == history["answer_tokens"]
    assert history_micro["padded_tokens"] < history["padded_tokens"]  # less padding, not more


def test_gradient_checkpointing_gives_the_same_gradients(train_lm_dir):
    items, pad_id = _items(train_lm_dir, 3)
    batch = collate(items, pad_id)
    model = _model(train_lm_dir).train()  # the tiny model has no dropout: train mode is deterministic
    answer_loss_sum(model, batch).backward()
    expected = _grads(model)
    model.zero_grad()
    enable_checkpointing(model)
    assert model.model.gradient_checkpointing
    answer_loss_sum(model, batch).backward()
    _assert_same_grads(_grads(model), expected, 1e-6)


@pytest.mark.parametrize("budget, lengths, expected", [
    (0, [5, 9, 7], [[0, 1, 2]]),  # no budget: the batch as it is
    (20, [5, 9, 7], [[1, 2], [0]]),  # longest first: 2 x 9 fits, 3 x 9 does not
    (27, [5, 9, 7], [[1, 2, 0]]),
    (8, [5, 9, 7], [[1], [2], [0]]),  # an example over the budget goes alone, never dropped
])
def test_split_by_tokens(budget, lengths, expected):
    assert split_by_tokens([0, 1, 2], lengths, budget) == expected


def test_plan_keeps_every_example_once_per_epoch_under_a_token_budget():
    lengths = [600 + 13 * (i % 7) for i in range(30)]
    config = FinetuneConfig(epochs=2, batch_size=8, micro_batch_tokens=1400)
    steps = plan_steps(lengths, config)
    assert len(steps) == 2 * 4  # optimizer steps follow batch_size, not the budget
    for epoch in (steps[:4], steps[4:]):
        assert sorted(i for step in epoch for mb in step for i in mb) == list(range(30))
    for step in steps:
        for mb in step:
            assert len(mb) * max(lengths[i] for i in mb) <= 1400


def test_paraphrase_progress_has_a_total():
    from ragtune.train.paraphrase import paraphrase_with_model
    from ragtune.types import Generation

    class Echo:
        def generate(self, batch, max_new_tokens=64):
            return [Generation(text="Which one is it?") for _ in batch]

    seen = []
    questions = [f"Who is number {i}?" for i in range(10)]
    paraphrase_with_model(Echo(), questions, 2, batch_size=2, on_batch=seen.append)
    assert seen == [8, 2, 8, 2] and sum(seen) == 2 * 10  # the bar's total: n * len(questions); 4 batches a call


def test_auto_checkpointing_recomputes_only_the_micro_batches_over_the_budget(train_lm_dir):
    items, pad_id = _items(train_lm_dir, 4)
    model = _model(train_lm_dir).train()
    enable_checkpointing(model)
    calls = []
    for layer in model.model.layers:
        original = layer._gradient_checkpointing_func
        layer._gradient_checkpointing_func = lambda *a, _f=original, **k: (calls.append(1), _f(*a, **k))[1]
    longest = max(len(x) for x in items)
    micro = [[items[0]], [items[1], items[2], items[3]]]
    _train_step(model, micro, pad_id, "cpu", False, {"tokens": 0, "answer_tokens": 0}, checkpoint_above=2 * longest)
    assert len(calls) == len(model.model.layers)  # the 3-row micro-batch only, once per layer
    set_checkpointing(model, False)
    assert not any(layer.gradient_checkpointing for layer in model.model.layers)


def test_checkpoint_layers_recomputes_that_share_of_the_layers_in_budget_micro_batches(train_lm_dir):
    """checkpoint_layers (issue 15, the demo's RAFT): within the budget, that share of the layers is recomputed,
    spread evenly; a micro-batch over the budget still checkpoints every layer; the gradients do not change."""
    items, pad_id = _items(train_lm_dir, 4)
    model = _model(train_lm_dir).train()
    enable_checkpointing(model)
    layers = model.model.layers
    set_checkpointing(model, 0.5)
    flags = [layer.gradient_checkpointing for layer in layers]
    assert sum(flags) == round(len(layers) / 2) and flags != sorted(flags) or len(layers) < 3
    calls = []
    for i, layer in enumerate(layers):
        original = layer._gradient_checkpointing_func
        layer._gradient_checkpointing_func = lambda *a, _f=original, _i=i, **k: (calls.append(_i), _f(*a, **k))[1]
    longest = max(len(x) for x in items)
    micro = [[items[0]], [items[1], items[2], items[3]]]
    _train_step(model, micro, pad_id, "cpu", False, {"tokens": 0, "answer_tokens": 0},
                checkpoint_above=2 * longest, checkpoint_layers=0.5)
    expected = [i for i, on in enumerate(flags) if on]
    assert calls == expected + list(range(len(layers)))  # the small batch: half; the large one: every layer
    partial = _grads(model)
    model.zero_grad(set_to_none=True)
    set_checkpointing(model, False)
    _train_step(model, micro, pad_id, "cpu", False, {"tokens": 0, "answer_tokens": 0})
    _assert_same_grads(partial, _grads(model), 1e-5)
