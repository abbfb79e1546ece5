"""Training checkpoints without pickle: LoRA weights, optimizer, scheduler, RNG and position.

A checkpoint is a folder `step-N` under OUT.partial/checkpoints, written to a temp folder and renamed, holding
safetensors for tensors and JSON for everything else. Resuming from it reproduces the uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.atomic import place_dir
from ragtune.errors import ConfigError

logger = logging.getLogger(__name__)

_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass(frozen=True)
class TrainingState:
    step: int  # optimizer steps done
    fingerprint: str  # hash of config + data: a checkpoint only resumes the run that made it
    history: dict[str, Any]  # losses, token counts, elapsed seconds so far


def latest_checkpoint(folder: Path) -> Path | None:
    """The highest step-N folder under `folder`, or None."""
    if not folder.is_dir():
        return None
    steps = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return max(steps)[1] if steps else None


def save_checkpoint(folder: Path, model: Any, optimizer: Any, scheduler: Any, state: TrainingState, keep: int) -> Path:
    """Write checkpoint step-N atomically and keep only the `keep` newest."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    final = folder / f"step-{state.step}"
    tmp = folder / f".step-{state.step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(weights, str(tmp / "adapter.safetensors"))
    opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
    save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(rng, str(tmp / "rng.safetensors"))
    meta = {"step": state.step, "fingerprint": state.fingerprint, "history": state.history,
            "optimizer": opt_meta, "scheduler": scheduler.state_dict()}
    (tmp / "state.json").write_text(json.dumps(meta), encoding="utf-8")
    place_dir(tmp, final, overwrite=True)
    old = sorted(((int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_DIR.match(p.name))), reverse=True)
    for _, path in old[keep:]:
        shutil.rmtree(path, ignore_errors=True)
    logger.info("checkpoint saved: %s", final)
    return final


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any, fingerprint: str) -> TrainingState:
    """Restore model/optimizer/scheduler/RNG from a checkpoint made by the same config and data."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
    if meta["fingerprint"] != fingerprint:
        raise ConfigError(
            f"checkpoint {str(path)!r} was made with different training data or settings: "
            "rerun without --resume to start over"
        )
    set_peft_model_state_dict(model, load_file(str(path / "adapter.safetensors")))
    optimizer.load_state_dict(_unflatten_optimizer(load_file(str(path / "optimizer.safetensors")), meta["optimizer"]))
    scheduler.load_state_dict(meta["scheduler"])
    rng = load_file(str(path / "rng.safetensors"))
    torch.set_rng_state(rng["cpu"])
    cuda = [rng[k] for k in sorted(k for k in rng if k.startswith("cuda"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    return TrainingState(step=meta["step"], fingerprint=meta["fingerprint"], history=meta["history"])


def _flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    import torch

    tensors: dict[str, Any] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in state_dict["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    for pid, entry in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}
