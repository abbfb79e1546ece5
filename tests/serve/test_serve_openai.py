"""The OpenAI-compatible API, driven by the official `openai` client against a live loopback server."""

from __future__ import annotations

import pytest
from serve_helpers import ADMIN_KEY, HR_KEY, PLAIN_KEY, LiveServer, ScriptedGenerator, auth, make_app

openai = pytest.importorskip("openai")


@pytest.fixture()
def live(tmp_path):
    app, index, generator = make_app(tmp_path, arms=("rag", "base"))
    with LiveServer(app) as url:
        yield url, index, generator


def client(url: str, key: str = PLAIN_KEY):
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)


def test_models_lists_served_arms(live):
    url, _, _ = live
    models = client(url).models.list()
    assert [m.id for m in models.data] == ["rag", "base"]


def test_chat_completion_answers_with_citations(live):
    url, _, generator = live
    completion = client(url).chat.completions.create(
        model="rag", messages=[{"role": "user", "content": "How many days of annual leave do staff get?"}]
    )
    content = completion.choices[0].message.content
    assert content.startswith("Staff get 27 days of annual leave")
    assert "[1]" in content and "Sources:\n[1] Leave policy (leave.md)" in content
    extra = completion.model_extra
    assert extra["citations"][0]["doc_id"] == "leave.md"
    assert extra["citations"][0]["cited"] is True
    assert extra["ragtune"]["arm"] == "rag"
    assert extra["ragtune"]["screening"] == {"flagged": False, "chunks": []}
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0
    prompt = generator.prompts[-1]  # the model saw numbered sources, the best ([1]) last before the question
    assert prompt.startswith("Sources:\n[") and "[1] Leave policy" in prompt.split("\n\nQuestion:")[0].rsplit("\n\n", 1)[-1]


def test_closed_book_arm_has_no_sources(live):
    url, _, generator = live
    completion = client(url).chat.completions.create(model="base", messages=[{"role": "user", "content": "Leave days?"}])
    assert completion.model_extra["citations"] == []
    assert "Sources:" not in generator.prompts[-1]
    assert completion.choices[0].message.content == "I do not know."


def test_streaming_yields_pieces_then_citations(live):
    url, _, _ = live
    stream = client(url).chat.completions.create(
        model="rag", messages=[{"role": "user", "content": "When does the Pelling Gull vessel sail?"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.startswith("The research vessel Pelling Gull sails from Lantern Point")
    assert len([c for c in chunks if c.choices[0].delta.content]) > 5  # arrived in several pieces
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"][0]["doc_id"] == "boat.md"


def test_wrong_or_missing_key_is_401_and_serves_nothing(live):
    url, _, generator = live
    with pytest.raises(openai.AuthenticationError):
        client(url, key="not-a-valid-key").chat.completions.create(
            model="rag", messages=[{"role": "user", "content": "Salary bands?"}]
        )
    import httpx

    for method, path in [("GET", "/v1/models"), ("GET", "/v1/documents"), ("POST", "/v1/search"), ("GET", "/metrics")]:
        response = httpx.request(method, url + path, json={"query": "x"} if method == "POST" else None)
        assert response.status_code == 401, path
        assert "data" not in response.json()
    assert generator.prompts == []


def test_unknown_model_is_404(live):
    url, _, _ = live
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client(url).chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])


def test_healthz_needs_no_key(served):
    client_, _, _ = served
    response = client_.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_metrics_count_requests(served):
    client_, _, _ = served
    body = {"model": "rag", "messages": [{"role": "user", "content": "leave days"}]}
    assert client_.post("/v1/chat/completions", json=body, headers=auth(HR_KEY)).status_code == 200
    text = client_.get("/metrics", headers=auth(ADMIN_KEY)).text
    assert 'ragtune_requests_total{method="POST",route="/v1/chat/completions",status="200"} 1' in text
    assert "ragtune_queue_depth 0" in text
    assert 'ragtune_request_duration_seconds_count{route="/v1/chat/completions"} 1' in text
    assert "ragtune_generation_batch_size_count 1" in text


def test_refuses_non_loopback_without_keys(tmp_path):
    from ragtune.errors import ConfigError
    from ragtune.serve.app import create_app
    from ragtune.serve.auth import KeyStore
    from ragtune.serve.settings import ServeSettings

    settings = ServeSettings(arms=("base",), host="0.0.0.0")
    with pytest.raises(ConfigError, match="refusing to serve on '0.0.0.0' without API keys"):
        create_app(settings, generators={"base": ScriptedGenerator()}, keys=KeyStore({}))
    app = create_app(settings.model_copy(update={"host": "127.0.0.1"}), generators={"base": ScriptedGenerator()},
                     keys=KeyStore({}))
    from fastapi.testclient import TestClient

    with TestClient(app) as open_client:  # open mode on loopback: no key needed
        response = open_client.post("/v1/chat/completions", json={"model": "base", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
