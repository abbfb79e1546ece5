"""Addresses, the missing extra, and ray staying out of `import ragtune` and the CLI help (no Ray started)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ragtune.distributed.ray_cluster import check_address, import_ray
from ragtune.errors import ConfigError, MissingExtraError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("address", ["local", "auto", "ray://10.0.0.5:10001", "head.example:6379", "127.0.0.1:6379"])
def test_good_addresses_are_kept(address):
    assert check_address(address) == address


@pytest.mark.parametrize("address", ["", "nowhere", "http://x:1", "host:port", "a b:1"])
def test_bad_address_is_a_config_error_naming_it(address):
    with pytest.raises(ConfigError, match="bad --ray address"):
        check_address(address)


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(MissingExtraError, match=r"ragtune\[ray\]"):
        import_ray()


def test_import_and_cli_help_do_not_import_ray():
    code = (
        "import sys\nimport ragtune\nfrom ragtune.cli import main\n"
        "try:\n    main(['ingest', '--help'])\nexcept SystemExit:\n    pass\n"
        "try:\n    main(['compare', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('RAY', 'ray' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--ray" in done.stdout and done.stdout.strip().endswith("RAY False")


def test_cli_bad_ray_address_exits_2_before_any_work(tmp_path, capsys):
    from ragtune.cli import main

    (tmp_path / "a.md").write_text("Some text.")
    for command in (["ingest", str(tmp_path / "a.md"), "--index", str(tmp_path / "idx"), "--embedder", "hash:64"],
                    ["compare", "--index", str(tmp_path / "idx"), "--questions", str(tmp_path / "q.jsonl"),
                     "--out", str(tmp_path / "run")]):
        with pytest.raises(SystemExit) as exited:
            main([*command, "--ray", "nowhere"])
        assert exited.value.code == 2
        assert "bad --ray address 'nowhere'" in capsys.readouterr().err
    assert not (tmp_path / "idx").exists()


def test_a_ray_data_run_starts_no_usage_poller_in_the_driver(ray_local):
    """Ray Data's usage collector polls a Prometheus on localhost:9090 from driver threads that outlive the run
    and log tracebacks; on Python 3.11 those raced an `ast` parse elsewhere (a SystemError in np.load in CI)."""
    import threading

    rows = ray_local.data.range(8).map_batches(lambda batch: batch).take_all()
    assert len(rows) == 8
    assert [t.name for t in threading.enumerate() if "usage" in t.name] == []


@pytest.mark.parametrize(("address", "want"), [
    ("ray://10.0.0.5:10001", ("10.0.0.5", 10001)), ("head.example:6379", ("head.example", 6379)),
    ("[::1]:6379", ("::1", 6379)), ("auto", (None, 0)), ("local", (None, 0)),
])
def test_host_and_port_of_an_address(address, want):
    from ragtune.distributed.ray_cluster import _host_port

    assert _host_port(address) == want


def test_an_address_nobody_answers_is_refused_before_ray_init(monkeypatch):
    import socket

    from ragtune.distributed import ray_cluster

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        called = []
        monkeypatch.setattr(ray_cluster, "import_ray", lambda: SimpleNamespace(
            is_initialized=lambda: False, init=lambda **kw: called.append(kw), shutdown=lambda: None))
        with pytest.raises(ConfigError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
            with ray_cluster.ray_session(f"127.0.0.1:{port}"):
                pass
    assert called == []


def test_ray_client_is_refused_for_ray_data_before_connecting(monkeypatch):
    from ragtune.distributed import ray_cluster

    monkeypatch.setattr(ray_cluster, "import_ray", lambda: pytest.fail("connected"))
    with pytest.raises(ConfigError, match="does not work through Ray Client"):
        with ray_cluster.ray_session("ray://127.0.0.1:10001", ray_data=True):
            pass
