"""API keys from a file and an env var; settings validation; loopback detection."""

from __future__ import annotations

import pytest

from ragtune.errors import ConfigError
from ragtune.serve.auth import KeyStore, key_from_headers
from ragtune.serve.settings import ServeSettings, is_loopback


def test_keys_from_file_and_env(tmp_path, monkeypatch):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# team keys\nfile-key-0001=hr,eng\n\nfile-key-0002\n", encoding="utf-8")
    monkeypatch.setenv("TEST_RAGTUNE_KEYS", "env-key-00001=admin; env-key-00002=ops")
    store = KeyStore.load(str(keys_file), "TEST_RAGTUNE_KEYS")
    assert len(store) == 4 and store.enabled
    assert store.lookup("file-key-0001").groups == frozenset({"hr", "eng"})
    assert store.lookup("file-key-0002").groups == frozenset()
    assert store.lookup("env-key-00001").is_admin
    assert store.lookup("env-key-00002").groups == frozenset({"ops"})
    assert store.lookup("file-key-0003") is None
    assert "file-key" not in store.lookup("file-key-0001").identity  # identities never carry the key


def test_bad_key_config(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="not found"):
        KeyStore.load(str(tmp_path / "missing.txt"), None)
    monkeypatch.setenv("TEST_RAGTUNE_KEYS", "short=admin")
    with pytest.raises(ConfigError, match="too short"):
        KeyStore.load(None, "TEST_RAGTUNE_KEYS")


def test_open_mode_without_keys(monkeypatch):
    monkeypatch.delenv("TEST_RAGTUNE_KEYS", raising=False)
    store = KeyStore.load(None, "TEST_RAGTUNE_KEYS")
    assert not store.enabled and store.lookup(None).is_admin


def test_key_headers():
    assert key_from_headers({"authorization": "Bearer abc123"}) == "abc123"
    assert key_from_headers({"authorization": "bearer  abc123 "}) == "abc123"
    assert key_from_headers({"x-api-key": "k1"}) == "k1"
    assert key_from_headers({"authorization": "Basic xyz"}) is None


def test_loopback_and_settings():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.3.2.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("example.com")
    assert ServeSettings(arms=("rag", "rag", "base")).arms == ("rag", "base")
    with pytest.raises(ValueError, match="unknown arm"):
        ServeSettings(arms=("rag", "best"))
    with pytest.raises(ValueError, match="extra"):
        ServeSettings(colour="blue")
