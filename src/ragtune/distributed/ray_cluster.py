"""Connecting to Ray: start a local instance bound to loopback, or join an existing cluster.

>>> with ray_session("local", num_cpus=2) as ray:   # doctest: +SKIP
...     ray.get(...)

A local instance is started with `--node-ip-address=127.0.0.1`, no dashboard and no usage stats. On a machine
without a public interface Ray otherwise picks eth0 and listens on every interface; RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
together with the loopback node address keeps every Ray port on 127.0.0.1 (checked with `ss -ltnp`). Only the
instance this process started is shut down; an instance that was already running (a test fixture, a notebook) is
used and left alone.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ragtune.errors import ConfigError, MissingExtraError

logger = logging.getLogger(__name__)

LOCAL = "local"  # `--ray local`: start a local instance on loopback
LOCAL_OBJECT_STORE_BYTES = 512 * 1024**2  # a small shared-memory store: batches stream, nothing large is kept
_LOCAL_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# Held for the whole session, local or joined: Ray Data reads these at every execution, and with usage stats on its
# driver starts background threads that poll a Prometheus on localhost:9090 and log tracebacks when none answers
# (formatting a traceback parses source with `ast` on Python 3.11, which races an `ast` parse in another thread:
# "SystemError: AST constructor recursion depth mismatch" in an unrelated np.load).
_SESSION_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DATA_USAGE_DISABLED": "1"}
_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")
# Environment a worker needs to find the same models and caches as the driver (a local instance's workers
# inherit the environment of the moment it started, which a later setting does not reach).
_FORWARDED_ENV = ("RAGTUNE_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "PYTHONPATH")


def import_ray() -> Any:
    """The ray module, or MissingExtraError naming the extra."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray") from None
    return ray


def check_address(address: str) -> str:
    """'local', 'auto', 'ray://host:port' or 'host:port'; ConfigError otherwise."""
    address = address.strip()
    if address in (LOCAL, "auto") or address.startswith("ray://") or _HOST_PORT.match(address):
        return address
    raise ConfigError(f"bad --ray address {address!r}: expected 'local', 'auto', 'ray://HOST:PORT' or 'HOST:PORT'")


def worker_env() -> dict[str, str]:
    """The driver's environment variables that workers need (model and cache locations, offline flags)."""
    return {k: v for k, v in os.environ.items() if k.startswith(_FORWARDED_ENV)}


@contextmanager
def ray_session(address: str = LOCAL, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray connected for the duration of the block; yields the ray module.

    'local' starts an instance on 127.0.0.1 (num_cpus logical CPUs, default the machine's), anything else joins
    that cluster (its nodes need ragtune installed and the index, adapters, models and files to ingest at the same
    paths).
    """
    address = check_address(address)
    ray = import_ray()
    if ray.is_initialized():  # someone else's instance: use it, leave it running
        yield ray
        return
    with _environment(_SESSION_ENV):
        if address == LOCAL:
            _init_local(ray, num_cpus)
        else:
            logger.info("joining the Ray cluster at %s", address)
            ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": worker_env()})
        try:
            yield ray
        finally:
            ray.shutdown()  # a local instance started here stops with it; a joined cluster is only left


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ with `values` set for the block, restored after it."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _init_local(ray: Any, num_cpus: int | None) -> None:
    with _environment(_LOCAL_ENV):  # read by ray.init and the processes it starts; restored right after
        _init_loopback(ray, num_cpus)
    logger.info("started a local Ray instance on 127.0.0.1")


def _init_loopback(ray: Any, num_cpus: int | None) -> None:
    # The driver reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, when ray is imported: set late, it is ignored and
    # gcs_server/raylet/workers listen on every interface (measured with ss). So the flag it became is set too.
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    saved_flag = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    if saved_flag is not None:
        constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(
            _node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=num_cpus or os.cpu_count() or 1,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES, log_to_driver=False,
        )
    finally:
        if saved_flag is not None:
            constants.ENABLE_RAY_CLUSTER = saved_flag


def exposed_listeners(root_pid: int | None = None) -> list[str]:
    """`ss -ltnp` lines of TCP sockets that root_pid (default: this process) or its descendants listen on
    outside loopback — empty for a healthy local instance. Linux only (reads /proc; needs `ss`)."""
    import subprocess
    from pathlib import Path

    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = set(), [root_pid or os.getpid()]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(children.get(pid, []))
    lines = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=False).stdout.splitlines()
    exposed = []
    for line in lines:
        pids = {int(p[4:]) for p in re.findall(r"pid=\d+", line)}
        fields = line.split()
        if pids & tree and len(fields) > 3 and not fields[3].startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:", "[::1]:")):
            exposed.append(line)
    return exposed
