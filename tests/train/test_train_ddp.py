"""Multi-process fine-tuning (DDP, two CPU processes over gloo) on the tiny random model."""

from __future__ import annotations

import operator
import os
import shutil

import pytest

from ragtune.errors import ConfigError
from ragtune.train import FinetuneConfig, build_sft_examples, finetune
from ragtune.train.distributed import RankFailed, Ranks, launch
from ragtune.train.trainer import plan_batches, rank_micro_batches, rank_share
from ragtune.types import Example


def _train_set(n):
    examples = [Example(question=f"What is the code of room {i}?" + " Please." * (i % 4),
                        answer=f"R{i}-K{i * 7}") for i in range(n)]
    return build_sft_examples(examples)


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_rank_shares_cover_each_global_batch_once():
    for size in range(9):
        batch = list(range(100, 100 + size))
        shares = [rank_share(batch, Ranks(r, 3)) for r in range(3)]
        assert [i for share in shares for i in share] == batch
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
    lengths = [10 + i % 5 for i in range(13)]
    config = FinetuneConfig(batch_size=2, epochs=1, micro_batch_tokens=0)
    steps = plan_batches(lengths, config, world_size=2)
    assert sorted(len(b) for step in steps for b in step) == [1, 4, 4, 4]  # global batch = 2 ranks x 2
    assert sorted(i for r in (0, 1) for step in steps for mb in rank_micro_batches(step, lengths, config, Ranks(r, 2))
                  for i in mb) == list(range(13))


class _StopAt:
    """on_step for the ranks (pickled into them): stop the run after optimizer step `step`, as a kill would."""

    def __init__(self, step):
        self.step = step

    def __call__(self, step, loss):
        if step == self.step:
            raise KeyboardInterrupt


@pytest.mark.slow  # two launches of two processes: 35-75 s on the loaded 2-core machine, mostly imports
def test_two_processes_reach_the_weights_of_one_process_at_twice_the_batch_and_resume(train_lm_dir, tmp_path):
    import torch

    train = _train_set(13)  # the last global batch has one example: rank 1 makes a zero-weight pass
    # A small token budget cuts every rank's share into micro-batches: gradients sync only after the last one.
    common = {"base_model": str(train_lm_dir), "epochs": 2, "lr": 5e-3, "lora_r": 4, "lora_alpha": 8,
              "lora_dropout": 0.0, "checkpoint_every": 3, "seed": 0, "micro_batch_tokens": 40, "num_threads": 1}
    one = finetune(train, tmp_path / "one", FinetuneConfig(batch_size=4, **common))
    config = FinetuneConfig(batch_size=2, **common)
    out = tmp_path / "two"
    with pytest.raises(RankFailed, match="KeyboardInterrupt"):
        finetune(train, out, config, nproc=2, on_step=_StopAt(5))
    assert not out.exists()
    assert [p.name for p in (tmp_path / "two.partial" / "checkpoints").iterdir()] == ["step-3"]  # rank 0's
    two = finetune(train, out, config, resume=True, nproc=2)  # all ranks load step-3
    assert two.metrics["world_size"] == 2 and len(two.metrics["peak_rss_mb_ranks"]) == 2
    assert two.metrics["rank_weight_max_diff"] == 0.0  # both ranks hold identical LoRA weights
    assert two.metrics["steps"] == one.metrics["steps"] == 8
    assert two.metrics["tokens"] == one.metrics["tokens"] and two.metrics["answer_tokens"] == one.metrics["answer_tokens"]
    assert two.metrics["loss_last_epoch"] == pytest.approx(one.metrics["loss_last_epoch"], rel=1e-5)
    a, b = _weights(tmp_path / "one"), _weights(out)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-5, atol=1e-7), key
    assert any(float(a[k].abs().max()) > 0 for k in a if "lora_B" in k)  # the adapter did train
    assert not (tmp_path / "two.partial").exists()


def test_a_failing_rank_ends_the_run_with_one_line_and_its_status(tmp_path):
    with pytest.raises(RankFailed, match=r"^training rank \d of 2: ZeroDivisionError: division by zero$") as info:
        launch(2, operator.truediv, (1, 0))
    assert info.value.exit_code == 1
    with pytest.raises(RankFailed, match=r"^training rank \d of 2: no training examples$") as info:
        launch(2, finetune, ([], tmp_path / "adapter"))
    assert info.value.exit_code == 2  # the rank's InputError status


def test_nproc_must_be_positive(train_lm_dir, tmp_path):
    with pytest.raises(ConfigError, match="at least 1"):
        finetune(_train_set(4), tmp_path / "x", FinetuneConfig(base_model=str(train_lm_dir)), nproc=0)


@pytest.mark.slow  # ~25 s: torchrun starts two processes
def test_torchrun_form_trains_and_only_rank_0_reports(train_lm_dir, tmp_path):
    import json
    import os
    import subprocess
    import sys

    from ragtune.train.distributed import free_port

    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"question": f"Which badge opens door {i}?", "answer": f"B-{i}"}) + "\n"
                          for i in range(8)))
    out = tmp_path / "adapter"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "-m", "ragtune.cli", "finetune",
           "--train", str(qa), "--out", str(out), "--base-model", str(train_lm_dir), "--epochs", "2",
           "--batch-size", "2", "--lora-r", "2", "--threads", "1", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "RAGTUNE_NO_PROGRESS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)  # one JSON document: the other rank printed nothing
    assert result["world_size"] == 2 and result["steps"] == 4 and result["rank_weight_max_diff"] == 0.0
    assert (out / "adapter_model.safetensors").is_file() and not (tmp_path / "adapter.partial").exists()


def _listeners_beyond_loopback() -> None:
    """A rank body: join the group as `finetune` does, then fail if this process listens beyond loopback."""
    import subprocess

    from ragtune.train.distributed import env_ranks, init_group

    init_group(env_ranks(), "cpu")
    import torch.distributed as dist

    dist.barrier()
    lines = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout.splitlines()
    mine = [line for line in lines if f"pid={os.getpid()}," in line]
    public = [line for line in mine if not any(a in line for a in ("127.0.0.1:", "[::1]:", "[::ffff:127.0.0.1]:"))]
    dist.barrier()
    dist.destroy_process_group()
    if public:
        raise RuntimeError(f"listening beyond loopback: {public}")


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_local_processes_listen_on_loopback_only():
    """torch's TCPStore binds every interface whatever MASTER_ADDR says: `--nproc` meets through a file store."""
    launch(2, _listeners_beyond_loopback, ())
