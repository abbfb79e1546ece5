"""The OpenAI-compatible backend against a fake chat-completions server on 127.0.0.1."""

from __future__ import annotations


import pytest

from ragtune.config import GenerateConfig
from ragtune.errors import BackendError, ConfigError
from ragtune.generate import backend_name, clear_generator_cache, load_generator
from ragtune.generate.openai_compat import OpenAICompatGenerator, split_endpoint


class _FakeChat:
    """The fake endpoint's log of the requests it received."""

    requests: list[dict] = []


def _echo(path: str, headers: dict, body: dict) -> tuple[int, dict | bytes]:
    """Echo the question as the answer citing [1]; 404 off the chat route; a malformed reply for "FAIL"."""
    _FakeChat.requests.append({"path": path, "auth": headers.get("Authorization"), "body": body})
    if path != "/v1/chat/completions":
        return 404, b"no such route"
    question = body["messages"][-1]["content"]
    if "FAIL" in question:
        return 200, {"error": "boom"}
    return 200, {"choices": [{"message": {"role": "assistant", "content": f" echo: {question} [1] "}}],
                 "usage": {"prompt_tokens": len(question.split()), "completion_tokens": 3}}


@pytest.fixture(scope="module")
def fake_server(json_endpoint):
    return json_endpoint(_echo)


def _user(text):
    return [{"role": "system", "content": "sys"}, {"role": "user", "content": text}]


def test_split_endpoint_variants():
    assert split_endpoint("http://h:1") == ("http://h:1/v1/chat/completions", None)
    assert split_endpoint("http://h:1/v1/") == ("http://h:1/v1/chat/completions", None)
    assert split_endpoint("https://h/api/v1#gpt-x") == ("https://h/api/v1/chat/completions", "gpt-x")
    assert split_endpoint("http://h/v1/chat/completions") == ("http://h/v1/chat/completions", None)
    with pytest.raises(ConfigError, match="ftp://h"):
        split_endpoint("ftp://h")


def test_batch_order_usage_model_and_key(fake_server, monkeypatch):
    monkeypatch.setenv("RAGTUNE_TEST_KEY", "sekret")
    _FakeChat.requests.clear()
    gen = OpenAICompatGenerator(fake_server + "#tiny-remote", api_key_env="RAGTUNE_TEST_KEY", concurrency=3)
    questions = [f"question number {i}" for i in range(7)]
    out = gen.generate([_user(q) for q in questions], max_new_tokens=11)
    assert [g.text for g in out] == [f"echo: {q} [1]" for q in questions]
    assert [g.prompt_tokens for g in out] == [3] * 7 and all(g.completion_tokens == 3 for g in out)
    assert len(_FakeChat.requests) == 7
    first = _FakeChat.requests[0]
    assert first["auth"] == "Bearer sekret"
    assert first["body"]["model"] == "tiny-remote"
    assert first["body"]["max_tokens"] == 11 and first["body"]["temperature"] == 0.0
    assert gen.model_id == "tiny-remote"


def test_model_name_from_config_and_no_key(fake_server, monkeypatch):
    monkeypatch.delenv("RAGTUNE_ABSENT_KEY", raising=False)
    clear_generator_cache()
    _FakeChat.requests.clear()
    gen = load_generator(GenerateConfig(model=fake_server + "/v1", model_name="named", api_key_env="RAGTUNE_ABSENT_KEY"))
    assert gen.generate([_user("hello")])[0].text == "echo: hello [1]"
    assert _FakeChat.requests[0]["body"]["model"] == "named"
    assert _FakeChat.requests[0]["auth"] is None
    assert backend_name(fake_server) == "openai" and backend_name("bundled") == "hf"
    clear_generator_cache()


def test_errors_become_backend_errors(fake_server):
    gen = OpenAICompatGenerator(fake_server)
    with pytest.raises(BackendError, match="no chat completion"):
        gen.generate([_user("FAIL please")])
    wrong_path = OpenAICompatGenerator(fake_server + "/other/chat/completions")
    with pytest.raises(BackendError, match="404"):
        wrong_path.generate([_user("x")])
    dead = OpenAICompatGenerator("http://127.0.0.1:9", timeout_s=2, max_attempts=2, sleep=lambda s: None)
    with pytest.raises(BackendError, match="failed.*after 2 attempts"):
        dead.generate([_user("x")])


def test_adapter_rejected_for_remote(fake_server):
    with pytest.raises(ConfigError, match="adapter"):
        load_generator(GenerateConfig(model=fake_server, adapter="/some/adapter"))


# --- retries with backoff (httpx.MockTransport, no sockets) -------------------------------------------------

def _ok(text="fine"):
    import httpx

    return httpx.Response(200, json={"choices": [{"message": {"content": text}}], "usage": {}})


def _scripted(answers):
    """A generator whose transport answers from `answers` in turn; returns (generator, calls, waits)."""
    import httpx

    calls, waits = [], []

    def handle(request):
        calls.append(request)
        return answers[min(len(calls), len(answers)) - 1]

    gen = OpenAICompatGenerator(
        "http://remote.test", max_attempts=3, backoff_s=0.5, transport=httpx.MockTransport(handle), sleep=waits.append
    )
    return gen, calls, waits


def test_one_429_then_200_succeeds_after_retry_after():
    import httpx

    gen, calls, waits = _scripted([httpx.Response(429, headers={"Retry-After": "2"}, text="slow down"), _ok("after")])
    assert gen.generate([_user("q")])[0].text == "after"
    assert len(calls) == 2 and waits == [2.0]


def test_persistent_500_fails_after_max_attempts_with_backoff():
    import httpx

    gen, calls, waits = _scripted([httpx.Response(500, text="overloaded\ntry later")])
    with pytest.raises(BackendError) as info:
        gen.generate([_user("q")])
    assert len(calls) == 3
    message = str(info.value)
    assert "HTTP 500" in message and "after 3 attempts" in message and "\n" not in message
    # equal jitter: retry n waits between half and all of 0.5 * 2^(n-1)
    assert len(waits) == 2 and 0.25 <= waits[0] <= 0.5 and 0.5 <= waits[1] <= 1.0


def test_400_is_not_retried():
    import httpx

    gen, calls, waits = _scripted([httpx.Response(400, text="bad request"), _ok()])
    with pytest.raises(BackendError, match="HTTP 400"):
        gen.generate([_user("q")])
    assert len(calls) == 1 and waits == []


def test_connection_error_is_retried():
    import httpx

    state = {"n": 0}

    def handle(request):
        state["n"] += 1
        if state["n"] == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return _ok("back")

    waits = []
    gen = OpenAICompatGenerator("http://remote.test", transport=httpx.MockTransport(handle), sleep=waits.append)
    assert gen.generate([_user("q")])[0].text == "back"
    assert state["n"] == 2 and len(waits) == 1


def test_retry_after_http_date_and_cap():
    from ragtune.generate.openai_compat import MAX_RETRY_WAIT_S, backoff_delay, retry_after_seconds

    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    import random

    assert backoff_delay(1, 0.5, MAX_RETRY_WAIT_S, 3600.0, random.Random(0)) == MAX_RETRY_WAIT_S
    assert backoff_delay(10, 0.5, 8.0, None, random.Random(0)) <= 8.0


def test_max_attempts_from_config_reaches_the_backend(fake_server):
    clear_generator_cache()
    gen = load_generator(GenerateConfig(model=fake_server, max_attempts=2))
    assert gen.max_attempts == 2
    clear_generator_cache()
