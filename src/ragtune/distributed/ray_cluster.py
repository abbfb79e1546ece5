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
from collections.abc import Callable, Iterator
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
def ray_session(address: str = LOCAL, num_cpus: int | None = None, *, ray_data: bool = False) -> Iterator[Any]:
    """Ray connected for the duration of the block; yields the ray module.

    'local' starts an instance on 127.0.0.1 (num_cpus logical CPUs, default the machine's), anything else joins
    that cluster (its nodes need ragtune installed and the index, adapters, models and files to ingest at the same
    paths). `ray_data`: the block runs Ray Data, which does not run through Ray Client, so a 'ray://' address is
    refused before anything connects (measured with Ray 2.60: "'Worker' object has no attribute 'core_worker'").
    """
    address = check_address(address)
    if ray_data and address.startswith("ray://"):
        raise ConfigError(
            f"--ray {address}: ingestion runs on Ray Data, which does not work through Ray Client (ray://); give the "
            "cluster's own address (HOST:6379) from a machine in its network, or run ragtune on the cluster "
            "(`ray job submit -- ragtune ingest ... --ray auto`)")
    ray = import_ray()
    if ray.is_initialized():  # someone else's instance: use it, leave it running
        yield ray
        return
    with _environment(_session_env()), _quiet_ray_logs():
        if address == LOCAL:
            _init_local(ray, num_cpus)
        else:
            _join(ray, address)
        try:
            yield ray
        finally:
            ray.shutdown()  # a local instance started here stops with it; a joined cluster is only left


def _join(ray: Any, address: str) -> None:
    """ray.init(address) with what a cluster on this machine needs, and one clear line when it cannot be joined.

    - A HOST:PORT that answers no TCP connection within JOIN_CHECK_S is refused at once (ray.init retries an
      unreachable address for minutes before it gives up).
    - A cluster on loopback (`ray start --head --node-ip-address=127.0.0.1`) is joined as the local instance is
      started: with the node address 127.0.0.1 and RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0. Without them the driver
      rewrites the address to eth0's and waits on it (measured: 13 minutes, then "Failed to connect").
    - Token authentication (Ray >= 2.52 `ray start` enables it): Ray sends a token found on this machine only to a
      cluster it finds itself ('auto'); ragtune does the same for a loopback address (the token is this machine's
      own). For another address the user sets RAY_AUTH_MODE=token, and a cluster that refuses gets that line.
    """
    if address == "auto":  # the cluster Ray would find (RAY_ADDRESS, else the newest started on this machine)
        address = _found_cluster() or address
    host, port = _host_port(address)
    if host is not None:
        _check_reachable(address, host, port)
    loopback = host in _LOOPBACK_HOSTS
    logger.info("joining the Ray cluster at %s", address)
    direct = not address.startswith("ray://")
    kwargs: dict[str, Any] = {"address": address, "log_to_driver": False, "runtime_env": {"env_vars": worker_env()}}
    if direct:  # Ray Client passes it on to a server it starts, which then fails ("Starting Ray client server failed")
        kwargs["logging_level"] = _init_logging_level()
    try:
        if loopback:
            _enable_local_token(ray)
        if loopback and direct:
            with _environment(_LOCAL_ENV):
                _with_cluster_flag_off(ray, lambda: ray.init(_node_ip_address="127.0.0.1", **kwargs))
        else:
            ray.init(**kwargs)
    except Exception as exc:  # noqa: BLE001  (ray raises ConnectionError, RuntimeError, AuthenticationError...)
        chain, cause = [], exc
        while cause is not None and len(chain) < 8:
            chain.append(f"{type(cause).__name__}: {cause}")
            cause = cause.__cause__ or cause.__context__
        if any("Authentication" in text or "auth token" in text.lower() for text in chain):
            raise ConfigError(
                f"the Ray cluster at {address} refused this driver's authentication: set RAY_AUTH_MODE=token with "
                f"the cluster's token in RAY_AUTH_TOKEN or ~/.ray/auth_token") from None
        raise ConfigError(f"cannot join the Ray cluster at {address}: {' '.join(str(exc).split())[:300]}") from None


_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
JOIN_CHECK_S = 5.0  # seconds a HOST:PORT has to accept a TCP connection before --ray gives up on it


def _host_port(address: str) -> tuple[str | None, int]:
    """(host, port) of 'HOST:PORT' or 'ray://HOST:PORT' ('[::1]:6379' gives '::1'); (None, 0) for 'auto'.

    >>> _host_port("ray://10.0.0.5:10001"), _host_port("[::1]:6379"), _host_port("auto")
    (('10.0.0.5', 10001), ('::1', 6379), (None, 0))
    """
    rest = address.removeprefix("ray://")
    if address in (LOCAL, "auto") or ":" not in rest:
        return None, 0
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)


def _found_cluster() -> str | None:
    """The HOST:PORT `--ray auto` means, as Ray resolves it before rewriting a loopback host; None when Ray cannot
    say (no cluster found: ray.init('auto') then fails with its own message)."""
    try:
        from ray._private.services import get_ray_address_from_environment

        found = get_ray_address_from_environment("auto", None)
    except Exception:  # noqa: BLE001  (a private helper: absent or failing in other Ray versions)
        return None
    return found if isinstance(found, str) and _HOST_PORT.match(found) else None


def _check_reachable(address: str, host: str, port: int) -> None:
    import socket

    try:
        socket.create_connection((host, port), timeout=JOIN_CHECK_S).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__).lower()
        raise ConfigError(f"no Ray cluster answers at {address} ({reason}); start one with `ray start --head` "
                          f"or use --ray local") from None


def _enable_local_token(ray: Any) -> None:
    """Ray's own rule for a cluster it finds itself: RAY_AUTH_MODE unset and a token on this machine -> token mode."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    # Its warning says token authentication "is enabled for this Ray cluster": true of a cluster it starts, not of
    # one it joins, so it is held back here.
    setup_logger = logging.getLogger(maybe_enable_token_auth_if_token_available.__module__)
    level = setup_logger.level
    setup_logger.setLevel(logging.ERROR)
    try:
        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    finally:
        setup_logger.setLevel(level)


# Ray's own log lines on the driver's stderr, kept for --verbose: connection and Ray Data execution notes (INFO), its
# token warning for the loopback instance ragtune starts and stops, and Ray Data's "progress bars disabled" (ragtune
# draws its own). Failures still reach the user: as exceptions, which ragtune reports in one line. Ray Data sets its
# logger's level from RAY_DATA_LOG_LEVEL whenever it configures logging (on import and per dataset).
# Ray Client (ray://) resets the "ray" logger to INFO in ray.init, so its builder's note ("Passing the following
# kwargs to ray.init() on the server") is held back by its own logger.
_QUIET_LOGGERS = {"ray": logging.WARNING, "ray.data": logging.ERROR, "ray.client_builder": logging.WARNING,
                  "ray._private.authentication.authentication_token_setup": logging.ERROR}
_QUIET_ENV = {"RAY_DATA_LOG_LEVEL": "ERROR"}


def _init_logging_level() -> int:
    """ray.init's `logging_level` (it sets the "ray" logger's level; Ray's default is INFO)."""
    return logging.DEBUG if _verbose() else logging.WARNING


def _verbose() -> bool:
    return logging.getLogger().isEnabledFor(logging.DEBUG)  # `ragtune --verbose`


def _session_env() -> dict[str, str]:
    quiet = {k: v for k, v in _QUIET_ENV.items() if k not in os.environ} if not _verbose() else {}
    return {**_SESSION_ENV, **quiet}


@contextmanager
def _quiet_ray_logs() -> Iterator[None]:
    """Ray's Python loggers at _QUIET_LOGGERS' levels for the block (unless --verbose), restored after it."""
    if _verbose():
        yield
        return
    saved = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    for name, level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


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
    _with_cluster_flag_off(ray, lambda: ray.init(
        _node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=num_cpus or os.cpu_count() or 1,
        object_store_memory=LOCAL_OBJECT_STORE_BYTES, log_to_driver=False, logging_level=_init_logging_level(),
    ))


def _with_cluster_flag_off(ray: Any, init: Callable[[], Any]) -> None:
    """Run `init` with Ray's cluster flag off. The driver reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, when ray is
    imported: set late, it is ignored and gcs_server/raylet/workers listen on every interface (measured with ss),
    and a loopback cluster is looked for at eth0's address. So the flag it became is set too."""
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    saved_flag = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    if saved_flag is not None:
        constants.ENABLE_RAY_CLUSTER = False
    try:
        init()
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
