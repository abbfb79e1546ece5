"""LoRA training mechanics on a tiny random model: loss, answer-only loss parity, checkpoints and resume,
the adapter folder and its base-model check, merging."""

from __future__ import annotations

import json

import pytest

from ragtune.errors import ConfigError, InputError, NotBuiltError
from ragtune.train import FinetuneConfig, build_sft_examples, check_adapter, finetune, merge_adapter
from ragtune.train.adapter import MANIFEST, load_adapted_model, read_manifest
from ragtune.types import Example


def _train_set(n=12):
    examples = [Example(question=f"What is the code of room {i}?", answer=f"R{i}-K{i * 7}") for i in range(n)]
    return build_sft_examples(examples)


def _config(lm_dir, **overrides):
    values = dict(base_model=str(lm_dir), epochs=2, batch_size=4, lr=5e-3, lora_r=4, lora_alpha=8,
                  lora_dropout=0.1, checkpoint_every=0, seed=0)
    values.update(overrides)
    return FinetuneConfig(**values)


def _adapter_weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_training_lowers_loss_and_writes_a_peft_adapter(train_lm_dir, tmp_path):
    out = tmp_path / "adapter"
    info = finetune(_train_set(), out, _config(train_lm_dir, epochs=12, lr=1e-2))
    assert info.path == out
    assert info.metrics["steps"] == 36 and info.metrics["examples"] == 12
    assert info.metrics["loss_last_epoch"] < 0.6 * info.metrics["loss_first_epoch"]
    assert info.metrics["tokens"] > info.metrics["answer_tokens"] > 0
    assert {"adapter_config.json", "adapter_model.safetensors", MANIFEST} <= {p.name for p in out.iterdir()}
    assert not (tmp_path / "adapter.partial").exists()
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["base_model"]["sha256"] == info.base_model_sha256 and len(info.base_model_sha256) == 64
    assert manifest["lora"] == {"r": 4, "alpha": 8, "dropout": 0.1, "target_modules": "all-linear"}
    assert manifest["training"]["epochs"] == 12 and manifest["data"]["examples"] == 12
    assert manifest["data"]["kinds"] == {"sft": 12}
    assert manifest["ragtune_version"] and manifest["versions"]["peft"]
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["r"] == 4
    assert {name.rsplit(".", 1)[-1] for name in adapter_config["target_modules"]} == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}  # all linear, not lm_head
    model, _ = load_adapted_model(out)
    assert type(model).__name__.startswith("PeftModel")


def test_answer_loss_matches_hf_loss(train_lm_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ragtune.train.collate import collate, tokenize_examples
    from ragtune.train.lora_model import answer_loss_sum

    tokenizer = AutoTokenizer.from_pretrained(str(train_lm_dir))
    model = AutoModelForCausalLM.from_pretrained(str(train_lm_dir)).eval()
    items = tokenize_examples(_train_set(3), tokenizer, 512).items
    batch = collate(items, tokenizer.pad_token_id)
    n_answer = int((batch["labels"][:, 1:] != -100).sum())
    with torch.no_grad():
        ours = answer_loss_sum(model, batch) / n_answer
        reference = model(**batch).loss
    assert torch.allclose(ours, reference, atol=1e-5)


def test_resume_after_interruption_gives_identical_weights(train_lm_dir, tmp_path):
    train = _train_set(10)
    config = _config(train_lm_dir, epochs=3, batch_size=3, grad_accum=2, checkpoint_every=2)
    reference = finetune(train, tmp_path / "straight", config)

    class Killed(Exception):
        pass

    def die_at_5(step, loss):
        if step == 5:
            raise Killed

    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        finetune(train, out, config, on_step=die_at_5)
    assert not out.exists()
    checkpoints = sorted(p.name for p in (tmp_path / "resumed.partial" / "checkpoints").iterdir())
    assert checkpoints == ["step-2", "step-4"]
    seen = []
    resumed = finetune(train, out, config, resume=True, on_step=lambda step, loss: seen.append(step))
    assert seen == [5, 6]  # continued after the last checkpoint, did not restart
    assert resumed.metrics["steps"] == reference.metrics["steps"] == 6
    a, b = _adapter_weights(tmp_path / "straight"), _adapter_weights(out)
    assert a.keys() == b.keys()
    import torch

    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    # a different config cannot resume from these checkpoints
    with pytest.raises(Killed):
        finetune(train, tmp_path / "other", config, on_step=die_at_5)
    with pytest.raises(ConfigError, match="different training data or settings"):
        finetune(train, tmp_path / "other", config.model_copy(update={"lr": 1e-4}), resume=True)


def test_wrong_base_model_is_a_clear_error(train_lm_dir, tiny_lm_builder, tmp_path):
    out = tmp_path / "adapter"
    finetune(_train_set(4), out, _config(train_lm_dir, epochs=1))
    assert check_adapter(out, train_lm_dir)["base_model"]["name"] == str(train_lm_dir)
    other = tiny_lm_builder(tmp_path / "other_lm", seed=1)  # same architecture, other weights
    with pytest.raises(ConfigError, match="different weights"):
        check_adapter(out, other)
    config = json.loads((other / "config.json").read_text())
    config["num_hidden_layers"] = 3
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="num_hidden_layers=2"):
        check_adapter(out, other)
    with pytest.raises(NotBuiltError, match="not found"):
        read_manifest(tmp_path / "nope")


def test_bad_output_and_input(train_lm_dir, tmp_path):
    out = tmp_path / "exists"
    out.mkdir()
    with pytest.raises(ConfigError, match="already exists"):
        finetune(_train_set(2), out, _config(train_lm_dir))
    with pytest.raises(InputError, match="no training examples"):
        finetune([], tmp_path / "empty", _config(train_lm_dir))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write"):
        finetune(_train_set(2), blocker / "adapter", _config(train_lm_dir))
    with pytest.raises(InputError, match="no trainable examples"):
        finetune(_train_set(2), tmp_path / "long", _config(train_lm_dir, max_len=16))
    assert not (tmp_path / "long").exists()
    with pytest.raises(ConfigError, match="not found"):
        finetune(_train_set(2), tmp_path / "x", _config(tmp_path / "no_model"))
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--qlora needs a CUDA GPU"):
            finetune(_train_set(2), tmp_path / "q", _config(train_lm_dir, qlora=True))
    assert not any(p.name.startswith(("x", "q", "empty")) for p in tmp_path.iterdir())  # nothing half-written


def test_merge_gives_the_same_outputs(train_lm_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "adapter"
    finetune(_train_set(4), out, _config(train_lm_dir, epochs=2, lr=2e-2))
    merged_dir = merge_adapter(out, tmp_path / "merged")
    assert (merged_dir / "ragtune_merged.json").is_file() and (merged_dir / "tokenizer.json").is_file()
    peft_model, tokenizer = load_adapted_model(out)
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir)).eval()
    base = AutoModelForCausalLM.from_pretrained(str(train_lm_dir)).eval()
    ids = tokenizer("What is the code of room 1?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        a, b, c = peft_model(input_ids=ids).logits, merged(input_ids=ids).logits, base(input_ids=ids).logits
    assert torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(a, c, atol=1e-3)  # the adapter changed something
    with pytest.raises(ConfigError, match="already exists"):
        merge_adapter(out, merged_dir)
