"""Multi-process fine-tuning: the rank context, the process group, and a local launcher for `--nproc N`.

Two ways in, one code path: `finetune(..., nproc=N)` spawns N local processes (loopback rendezvous on a free
port of 127.0.0.1), each of which calls `finetune` again with RANK/WORLD_SIZE/MASTER_* set; under
`torchrun --nproc_per_node N [--nnodes M --rdzv-endpoint HOST:PORT] -m ragtune.cli finetune ...` those variables
come from torchrun. Either way `finetune` sees WORLD_SIZE > 1 and trains under DistributedDataParallel
(gloo on CPU, nccl on CUDA).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragtune.errors import ConfigError, RagtuneError


@dataclass(frozen=True)
class Ranks:
    """Where this process stands: rank among world_size processes; local_rank on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_ranks() -> Ranks:
    """The ranks torchrun (or our launcher) put in the environment; a single process without them."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ConfigError(f"bad RANK/WORLD_SIZE/LOCAL_RANK in the environment: {exc}") from None
    return Ranks(rank, world, local)


def init_group(ranks: Ranks, device: str) -> bool:
    """Join the process group (gloo on CPU, nccl on CUDA); True when this call created it."""
    import torch
    import torch.distributed as dist

    if not ranks.distributed or dist.is_initialized():
        return False
    if device == "cuda":
        torch.cuda.set_device(ranks.local_rank)
    backend = "nccl" if device == "cuda" else "gloo"
    # nccl told its device up front: no "guessing device ID" warning, no hang on an uneven rank-to-GPU mapping
    bound = {"device_id": torch.device("cuda", ranks.local_rank)} if device == "cuda" else {}
    store = os.environ.get(STORE_ENV)
    if store:  # `--nproc` on one machine: a file rendezvous, so nothing listens beyond loopback
        dist.init_process_group(backend, init_method=f"file://{store}", rank=ranks.rank, world_size=ranks.world_size,
                                **bound)
    else:  # torchrun: its rendezvous (MASTER_ADDR/PORT or --rdzv-endpoint)
        dist.init_process_group(backend, **bound)
    return True


def quiet_unless_main(ranks: Ranks) -> None:
    """Ranks other than 0 log errors only and draw no loading bars: the user sees each message once."""
    if ranks.is_main:
        return
    import logging

    logging.getLogger("ragtune").setLevel(logging.ERROR)
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def barrier(ranks: Ranks) -> None:
    if ranks.distributed:
        import torch.distributed as dist

        dist.barrier()


def all_gather_floats(ranks: Ranks, values: Sequence[float]) -> list[list[float]]:
    """Every rank's `values` (same length on all ranks), in rank order."""
    if not ranks.distributed:
        return [list(values)]
    import torch
    import torch.distributed as dist

    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    mine = torch.tensor(list(values), dtype=torch.float64, device=device)
    out = [torch.empty_like(mine) for _ in range(ranks.world_size)]
    dist.all_gather(out, mine)
    return [t.cpu().tolist() for t in out]


# Set by `launch` for its workers: the path of a file store for the rendezvous. torch's TCPStore listens on every
# interface whatever MASTER_ADDR says; a file store in a private temp folder opens no socket, and gloo's own
# sockets stay on the loopback device (GLOO_SOCKET_IFNAME=lo).
STORE_ENV = "RAGTUNE_DIST_STORE"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RankFailed(RagtuneError):
    """A training process failed; the exit status is the failing rank's."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def launch(nproc: int, target: Any, args: tuple, kwargs: dict[str, Any] | None = None, *,
           poll_s: float = 0.2) -> None:
    """Run target(*args, **kwargs) in nproc spawned processes joined on a loopback rendezvous; wait for all of them.

    The first rank to fail ends the others and raises RankFailed with its one-line error and its exit status.
    """
    import multiprocessing

    if os.environ.get("WORLD_SIZE", "1") != "1":
        raise ConfigError("--nproc cannot be used inside torchrun (it already started the processes)")
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    port = free_port()
    store_dir = tempfile.mkdtemp(prefix="ragtune-ddp-")
    store = os.path.join(store_dir, "rendezvous")
    procs = [ctx.Process(target=_worker, args=(rank, nproc, port, errors, target, args, kwargs or {}, store),
                         daemon=False)
             for rank in range(nproc)]
    for p in procs:
        p.start()
    try:
        while True:
            failed = [(r, p) for r, p in enumerate(procs) if p.exitcode not in (None, 0)]
            if failed or all(p.exitcode == 0 for p in procs):
                break
            time.sleep(poll_s)
    finally:
        for p in procs:
            if p.exitcode is None:
                p.terminate()
        for p in procs:
            p.join(10)
            if p.exitcode is None:
                p.kill()
                p.join()
        shutil.rmtree(store_dir, ignore_errors=True)
    if failed:
        messages = {}
        while not errors.empty():
            rank, text = errors.get_nowait()
            messages[rank] = text
        # the root cause: the failing rank that reported an error (others die of a broken collective)
        rank, proc = next(((r, p) for r, p in failed if r in messages), failed[0])
        code = proc.exitcode if proc.exitcode > 0 else 1
        text = messages.get(rank, f"killed by signal {-proc.exitcode}" if proc.exitcode < 0 else "failed")
        raise RankFailed(f"training rank {rank} of {nproc}: {text}", code)


def _worker(rank: int, world: int, port: int, errors: Any, target: Any, args: tuple, kwargs: dict[str, Any],
            store: str = "") -> None:
    import sys

    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    if store:
        os.environ[STORE_ENV] = store
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    try:
        target(*args, **kwargs)
    except RagtuneError as exc:
        errors.put((rank, str(exc)))
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as one line, then exit non-zero
        errors.put((rank, f"{type(exc).__name__}: {exc}".strip(": ").splitlines()[0]))
        sys.exit(1)
