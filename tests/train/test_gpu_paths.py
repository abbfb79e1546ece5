"""The CUDA paths of training and generation, run on the CPU with the device logic mocked where it must be:
the device choice, bf16 autocast, the QLoRA load (a fake bitsandbytes), nccl and DDP device ids, and inputs that
follow the generator's model. scripts/gpu_check.py runs the same paths on a real GPU."""

from __future__ import annotations

import sys
import types

import pytest

from ragtune.errors import ConfigError, MissingExtraError
from ragtune.train import FinetuneConfig, build_sft_examples, finetune
from ragtune.train.distributed import STORE_ENV, Ranks, init_group
from ragtune.train.lora_model import bf16_autocast, load_lora_model, training_device
from ragtune.types import Example


def _train_set(n=6):
    return build_sft_examples([Example(question=f"What is the code of room {i}?", answer=f"R{i}-K{i * 7}")
                               for i in range(n)])


def _config(lm_dir, **overrides):
    values = {"base_model": str(lm_dir), "epochs": 1, "batch_size": 3, "lr": 5e-3, "lora_r": 4, "lora_alpha": 8,
              "checkpoint_every": 0, "seed": 0}
    values.update(overrides)
    return FinetuneConfig(**values)


@pytest.fixture
def cuda_present(monkeypatch):
    """torch believes one CUDA device is there."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


@pytest.fixture
def cuda_as_cpu(monkeypatch, cuda_present):
    """Moves to 'cuda' (modules and tensors) land on the CPU; returns the list of devices asked for."""
    import torch

    asked: list[str] = []

    def swap(args, kwargs):
        args = list(args)
        for i, a in enumerate(args):
            if str(a).startswith("cuda"):
                asked.append(str(a))
                args[i] = "cpu"
        if str(kwargs.get("device", "")).startswith("cuda"):
            asked.append(str(kwargs["device"]))
            kwargs = {**kwargs, "device": "cpu"}
        return args, kwargs

    for cls in (torch.Tensor, torch.nn.Module):
        original = cls.to

        def to(self, *args, _original=original, **kwargs):
            args, kwargs = swap(args, kwargs)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "to", to)
    return asked


def test_training_device_is_cuda_when_cuda_is_there(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training_device(FinetuneConfig()) == "cuda"
    assert training_device(FinetuneConfig(device="cpu")) == "cpu"
    assert training_device(FinetuneConfig(qlora=True)) == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert training_device(FinetuneConfig()) == "cpu"
    with pytest.raises(ConfigError, match="CUDA is not available"):
        training_device(FinetuneConfig(device="cuda"))
    with pytest.raises(ConfigError, match="--qlora needs a CUDA GPU"):
        training_device(FinetuneConfig(qlora=True))


def test_bf16_autocast_is_on_by_default_on_cuda_only():
    assert bf16_autocast(FinetuneConfig(), "cuda") is True
    assert bf16_autocast(FinetuneConfig(), "cpu") is False
    assert bf16_autocast(FinetuneConfig(bf16=False), "cuda") is False
    assert bf16_autocast(FinetuneConfig(bf16=True), "cpu") is True


def test_qlora_loads_nf4_double_quant_bf16_on_gpu_0_and_prepares_for_kbit(train_lm_dir, monkeypatch, cuda_present):
    import peft
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    monkeypatch.setitem(sys.modules, "bitsandbytes", types.ModuleType("bitsandbytes"))
    original = AutoModelForCausalLM.from_pretrained
    loads, prepared = [], []

    def from_pretrained(path, **kwargs):
        loads.append(kwargs)
        return original(path, dtype=torch.float32)  # a real tiny model: get_peft_model still runs on it

    def prepare(model, **kwargs):
        prepared.append((model, kwargs))
        # the fake has served the import check; peft must not take the tiny model's layers for 4-bit ones
        monkeypatch.delitem(sys.modules, "bitsandbytes")
        return model

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", from_pretrained)
    monkeypatch.setattr(peft, "prepare_model_for_kbit_training", prepare)
    # device 'cuda' on a CPU-only torch: a `.to('cuda')` of the model (wrong under QLoRA: device_map places it)
    # would raise here
    model, tokenizer = load_lora_model(train_lm_dir, _config(train_lm_dir, qlora=True), "cuda")

    assert len(loads) == 1
    kwargs = loads[0]
    assert kwargs["dtype"] is torch.bfloat16
    assert kwargs["device_map"] == {"": 0}
    quant = kwargs["quantization_config"]
    assert isinstance(quant, BitsAndBytesConfig)
    assert quant.load_in_4bit is True and quant.load_in_8bit is False
    assert quant.bnb_4bit_quant_type == "nf4"
    assert quant.bnb_4bit_use_double_quant is True
    assert quant.bnb_4bit_compute_dtype is torch.bfloat16
    assert len(prepared) == 1 and prepared[0][1] == {"use_gradient_checkpointing": False}
    assert type(model).__name__.startswith("PeftModel")
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert tokenizer.pad_token_id is not None


def test_qlora_without_bitsandbytes_names_the_gpu_extra(train_lm_dir, monkeypatch, cuda_present):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails
    with pytest.raises(MissingExtraError, match="gpu"):
        load_lora_model(train_lm_dir, _config(train_lm_dir, qlora=True), "cuda")


def _record_trainer_autocast(monkeypatch) -> list[dict]:
    """torch.autocast as called by ragtune.train.trainer (recorded, then a no-op); other callers unchanged."""
    import contextlib

    import torch

    calls: list[dict] = []
    original = torch.autocast

    def autocast(*args, **kwargs):
        if sys._getframe(1).f_globals.get("__name__") != "ragtune.train.trainer":
            return original(*args, **kwargs)
        calls.append(kwargs)
        return contextlib.nullcontext()

    monkeypatch.setattr(torch, "autocast", autocast)
    return calls


def test_training_on_cuda_autocasts_to_bf16_by_default(train_lm_dir, tmp_path, monkeypatch, cuda_as_cpu):
    import torch

    calls = _record_trainer_autocast(monkeypatch)
    info = finetune(_train_set(), tmp_path / "adapter", _config(train_lm_dir))
    assert info.metrics["steps"] == 2
    assert len(calls) == 2  # one micro-batch per step
    assert all(c == {"device_type": "cuda", "dtype": torch.bfloat16, "enabled": True} for c in calls)
    assert cuda_as_cpu and set(cuda_as_cpu) == {"cuda"}  # the model and every batch were sent to the GPU
    assert info.manifest["training"]["bf16"] is None and info.manifest["training"]["device"] == "auto"


def test_training_on_cuda_with_bf16_off_and_on_cpu_autocasts_nothing(train_lm_dir, tmp_path, monkeypatch,
                                                                      cuda_as_cpu):
    calls = _record_trainer_autocast(monkeypatch)
    finetune(_train_set(), tmp_path / "off", _config(train_lm_dir, bf16=False))
    assert [(c["device_type"], c["enabled"]) for c in calls] == [("cuda", False)] * 2
    calls.clear()
    finetune(_train_set(), tmp_path / "cpu", _config(train_lm_dir, device="cpu"))
    assert [(c["device_type"], c["enabled"]) for c in calls] == [("cpu", False)] * 2


def test_nproc_on_cuda_needs_one_gpu_per_process(train_lm_dir, tmp_path, cuda_present):
    with pytest.raises(ConfigError, match="--nproc 2 needs 2 GPUs"):
        finetune(_train_set(), tmp_path / "a", _config(train_lm_dir), nproc=2)


def test_process_group_is_nccl_on_cuda_and_gloo_on_cpu(monkeypatch, tmp_path):
    import torch
    import torch.distributed as dist

    joined, devices = [], []
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda *a, **k: joined.append((a, k)))
    monkeypatch.setattr(torch.cuda, "set_device", devices.append)
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "store"))

    assert init_group(Ranks(rank=1, world_size=2, local_rank=1), "cuda") is True
    assert devices == [1]
    assert joined == [(("nccl",), {"init_method": f"file://{tmp_path / 'store'}", "rank": 1, "world_size": 2,
                                   "device_id": torch.device("cuda", 1)})]  # nccl bound to the rank's GPU
    monkeypatch.delenv(STORE_ENV)
    joined.clear()
    init_group(Ranks(rank=0, world_size=2, local_rank=0), "cuda")  # under torchrun: its own rendezvous
    assert joined == [(("nccl",), {"device_id": torch.device("cuda", 0)})] and devices == [1, 0]
    joined.clear()
    init_group(Ranks(rank=0, world_size=2, local_rank=0), "cpu")
    assert joined == [(("gloo",), {})] and devices == [1, 0]  # no GPU chosen on CPU
    assert init_group(Ranks(), "cuda") is False and len(joined) == 1  # one process: no group


def test_ddp_wraps_on_this_ranks_gpu_on_cuda(monkeypatch):
    import torch
    import torch.nn.parallel

    from ragtune.train.trainer import _wrap_ddp

    wrapped = []
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel",
                        lambda module, **kwargs: wrapped.append(kwargs) or module)
    inner = torch.nn.Linear(2, 2)
    _wrap_ddp(inner, Ranks(rank=1, world_size=2, local_rank=1), "cuda")
    _wrap_ddp(inner, Ranks(rank=1, world_size=2, local_rank=1), "cpu")
    assert wrapped == [{"device_ids": [1], "init_sync": False}, {"device_ids": None, "init_sync": False}]


def test_generator_inputs_follow_the_models_device(train_lm_dir):
    import torch

    from ragtune.generate.hf import HFGenerator

    generator = HFGenerator(train_lm_dir)
    seen = []

    class OnAnotherDevice:
        """The generator's model as if moved to a GPU ('meta' stands in: no CPU tensor is on it)."""

        device = torch.device("meta")
        generation_config = generator.model.generation_config

        def generate(self, input_ids, attention_mask, **kwargs):
            seen.append((input_ids.device.type, attention_mask.device.type))
            new = torch.full((input_ids.shape[0], 2), generator.tokenizer.eos_token_id)
            return torch.cat([torch.zeros(input_ids.shape, dtype=torch.long), new], dim=1)

    generator.model = OnAnotherDevice()
    out = generator.generate([[{"role": "user", "content": "Hi?"}]], max_new_tokens=2)
    assert seen == [("meta", "meta")]
    assert out[0].text == "" and out[0].completion_tokens == 0


@pytest.mark.slow  # ~20 s: the dry run of scripts/gpu_check.py builds a 3M-parameter Llama and trains it 4 times
def test_gpu_check_dry_run_passes_on_the_cpu(tmp_path, monkeypatch):
    import importlib.util
    import json
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", script)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    try:
        gpu_check.find_tokenizer(None)
    except FileNotFoundError:
        pytest.skip("the bundled model is not converted here (its tokenizer builds the check's model)")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert gpu_check.main(["--cpu", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    statuses = {c["name"]: c["status"] for c in summary["checks"]}
    assert statuses.pop("qlora") == "SKIP"  # CUDA only
    assert set(statuses.values()) == {"PASS"} and len(statuses) == 9
