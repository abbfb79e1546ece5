"""Invalid input is a 4xx with a clear message on every route, never a 5xx; a busy index is 503 + Retry-After.

Bodies are sent as raw JSON text so that a lone surrogate travels as the JSON escape "\\ud800", as a client
would send it (Python's json encoder would refuse to build such a body).
"""

from __future__ import annotations

import pytest
from serve_helpers import ADMIN_KEY, PLAIN_KEY, auth, make_app

from ragtune.errors import BackendError, IndexBusyError

LONE = '"\\ud800"'  # the JSON text of a string holding one unpaired surrogate
PAIRED = '"\\ud83d\\ude00"'  # a valid surrogate pair (an emoji): fine
CHAT = '{"model": "rag", "messages": [{"role": "user", "content": %s}]}'

INVALID_TEXT = [
    ("POST", "/v1/chat/completions", CHAT % LONE),
    ("POST", "/v1/chat/completions", CHAT % ('"ok \\udfff then"')),
    ("POST", "/v1/chat/completions", '{"model": "rag", "stream": true, "messages": [{"role": "user", "content": %s}]}' % LONE),
    ("POST", "/v1/chat/completions", CHAT % ('[{"type": "text", "text": %s}]' % LONE)),
    ("POST", "/v1/chat/completions", '{"model": "rag", "messages": [{"role": "system", "content": %s}, '
                                     '{"role": "user", "content": "leave?"}]}' % LONE),
    ("POST", "/v1/chat/completions", '{"model": "rag", "user": %s, "messages": [{"role": "user", "content": "hi"}]}' % LONE),
    ("POST", "/v1/search", '{"query": %s}' % LONE),
    ("POST", "/v1/search", '{"queries": ["leave", %s]}' % LONE),
    ("POST", "/v1/search", '{"query": "leave", "filters": {"team": %s}}' % LONE),
    ("POST", "/v1/search", '{"query": "leave", %s: 1}' % LONE),
    ("POST", "/v1/documents", '{"id": "a.md", "text": %s}' % LONE),
    ("POST", "/v1/documents", '{"id": "a.md", "text": "fine", "title": %s}' % LONE),
    ("POST", "/v1/documents", '{"id": "a.md", "text": "fine", "metadata": {"team": %s}}' % LONE),
    ("POST", "/v1/documents", '{"id": "a.md", "text": "fine", "metadata": {%s: "x"}}' % LONE),
    ("POST", "/v1/documents", '{"id": "a.md", "text": "fine", "metadata": {"deep": [{"x": %s}]}}' % LONE),
    ("POST", "/v1/documents", '{"id": "a.md", "text": "fine", "groups": [%s]}' % LONE),
    ("PUT", "/v1/documents/a.md", '{"text": %s}' % LONE),
    ("PUT", "/v1/documents/a.md", '{"text": "fine", "metadata": "{\\"k\\": \\"\\\\ud800\\"}"}'),  # metadata as a JSON string
]


def send(client, method: str, path: str, body: str, key: str = ADMIN_KEY):
    return client.request(method, path, content=body.encode("utf-8"),
                          headers={**auth(key), "content-type": "application/json"})


def snapshot(index) -> tuple:
    return index.generation, sorted((d.doc_id, d.title) for d in index.documents())


@pytest.mark.parametrize(("method", "path", "body"), INVALID_TEXT)
def test_lone_surrogate_is_400_on_every_route(served, method, path, body):
    client, index, generator = served
    before = snapshot(index)
    response = send(client, method, path, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_text"
    assert "surrogate" in error["message"] and "UTF-8" in error["message"]
    assert snapshot(index) == before
    assert generator.prompts == []


def test_paired_surrogates_and_control_characters_are_valid_text(served):
    client, index, _ = served
    assert send(client, "POST", "/v1/search", '{"query": %s}' % PAIRED).status_code == 200
    assert send(client, "POST", "/v1/chat/completions", CHAT % '"leave\\u0000 days\\u0007?"').status_code == 200
    response = send(client, "PUT", "/v1/documents/smile.md", '{"text": "smile %s", "title": %s}' % (PAIRED[1:-1], PAIRED))
    assert response.status_code == 201, response.text
    assert [d.title for d in index.documents() if d.doc_id == "smile.md"] == ["\U0001F600"]


def test_utf8_invalid_bytes_and_non_finite_numbers_are_400(served):
    client, index, _ = served
    before = snapshot(index)
    bad_bytes = client.post("/v1/search", content=b'{"query": "\xed\xa0\x80"}',
                            headers={**auth(ADMIN_KEY), "content-type": "application/json"})
    assert bad_bytes.status_code == 400
    doc_bytes = client.post("/v1/documents", content=b'{"id": "b.md", "text": "caf\xe9"}',
                            headers={**auth(ADMIN_KEY), "content-type": "application/json"})
    assert doc_bytes.status_code == 400 and "UTF-8" in doc_bytes.json()["error"]["message"]
    nan = send(client, "POST", "/v1/documents", '{"id": "n.md", "text": "x", "metadata": {"score": NaN}}')
    assert nan.status_code == 400 and "finite" in nan.json()["error"]["message"]
    inf = send(client, "POST", "/v1/search", '{"query": "leave", "filters": {"year": Infinity}}')
    assert inf.status_code == 400
    deep = send(client, "POST", "/v1/search", '{"query": "leave", "filters": {"x": ' + "[" * 5000 + "]" * 5000 + "}}")
    assert deep.status_code == 400
    huge = send(client, "POST", "/v1/chat/completions",
                '{"model": "rag", "max_tokens": 1%s, "messages": [{"role": "user", "content": "hi"}]}' % ("0" * 5000))
    assert huge.status_code == 400
    assert snapshot(index) == before


def test_max_tokens_zero_is_refused_not_defaulted(served):
    client, _, generator = served
    for field in ("max_tokens", "max_completion_tokens"):
        for value in (0, -1):
            response = client.post("/v1/chat/completions", headers=auth(PLAIN_KEY),
                                   json={"model": "rag", field: value, "messages": [{"role": "user", "content": "leave?"}]})
            assert response.status_code == 400, response.text
            assert response.json()["error"]["code"] == "max_tokens"
            assert "max_tokens must be between 1 and" in response.json()["error"]["message"]
    assert generator.prompts == []


@pytest.mark.parametrize("part", [
    {"type": "text", "text": None},
    {"type": "text", "text": 42},
    {"type": "text"},
    {"type": "text", "text": ["a"]},
])
def test_non_string_text_parts_are_400_not_the_question_none(served, part):
    client, _, generator = served
    response = client.post("/v1/chat/completions", headers=auth(PLAIN_KEY),
                           json={"model": "rag", "messages": [{"role": "user", "content": [part]}]})
    assert response.status_code == 400, response.text
    assert "text" in response.json()["error"]["message"]
    assert generator.prompts == []


def test_text_parts_are_joined_and_other_parts_ignored(served):
    client, _, generator = served
    content = [{"type": "text", "text": "How many days"}, {"type": "image_url", "image_url": {"url": "x"}},
               {"type": "text", "text": "of annual leave?"}]
    response = client.post("/v1/chat/completions", headers=auth(PLAIN_KEY),
                           json={"model": "rag", "messages": [{"role": "user", "content": content}]})
    assert response.status_code == 200, response.text
    assert "How many days\nof annual leave?" in generator.prompts[-1]
    assert "None" not in generator.prompts[-1]


def test_busy_index_is_503_with_retry_after(served, monkeypatch):
    client, index, _ = served

    def busy(*_args, **_kwargs):
        raise IndexBusyError("index is busy: another writer (pid 4242) holds it", retry_after_s=7.2)

    monkeypatch.setattr(index, "add_documents", busy)
    monkeypatch.setattr(index, "delete_documents", busy)
    for method, path, body in [("POST", "/v1/documents", '{"id": "n.md", "text": "new"}'),
                               ("PUT", "/v1/documents/leave.md", '{"text": "changed"}'),
                               ("DELETE", "/v1/documents/leave.md", "")]:
        response = send(client, method, path, body)
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "8"
        error = response.json()["error"]
        assert error["code"] == "index_busy" and "another writer" in error["message"]


@pytest.mark.parametrize(("method", "path", "body"), [("PUT", "/v1/documents/leave.md", '{"text": "changed"}'),
                                                    ("DELETE", "/v1/documents/leave.md", "")])
def test_a_write_to_an_index_locked_elsewhere_is_503_after_the_write_timeout(tmp_path, monkeypatch, method, path, body):
    """Another writer holds the index lock (here a thread, as `ragtune ingest` would from a process). Before, the
    write waited up to the index lock's own limit (set very long here) and then went through once the holder let
    go; now it gives up after settings.write_timeout_s with 503 + Retry-After while the holder still holds it."""
    import threading

    from fastapi.testclient import TestClient

    from ragtune.index.lock import writer_lock

    monkeypatch.setenv("RAGTUNE_INDEX_LOCK_TIMEOUT_S", "600")
    app, index, _ = make_app(tmp_path, write_timeout_s=0.3)
    before = snapshot(index)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writer_lock(index.path):
            held.set()
            release.wait(60)  # bounded: the test sets it as soon as the request is answered

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        assert held.wait(30)
        with TestClient(app) as client:
            response = send(client, method, path, body)
            still_held = not release.is_set()
    finally:
        release.set()
        holder.join(30)
    assert still_held and response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "index_busy" and int(response.headers["Retry-After"]) >= 1
    index.reload()
    assert snapshot(index) == before  # nothing was written or deleted


def test_write_timeout_stays_below_the_request_timeout():
    from ragtune.serve.settings import ServeSettings

    assert ServeSettings().index_write_timeout_s == 10.0
    assert ServeSettings(request_timeout_s=8.0).index_write_timeout_s == 4.0


def test_backend_failure_is_502_not_500(tmp_path):
    from fastapi.testclient import TestClient
    from serve_helpers import make_app

    class Broken:
        model_id = "remote"
        batch_size = 8

        def generate(self, batch, max_new_tokens=64):
            raise BackendError("endpoint http://127.0.0.1:9/v1 answered HTTP 500")

    app, _, _ = make_app(tmp_path, generator=Broken())
    with TestClient(app) as client:
        response = client.post("/v1/chat/completions", headers=auth(PLAIN_KEY),
                               json={"model": "rag", "messages": [{"role": "user", "content": "leave?"}]})
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "backend_error" and "answered HTTP 500" in response.json()["error"]["message"]
        streamed = client.post("/v1/chat/completions", headers=auth(PLAIN_KEY),
                               json={"model": "rag", "stream": True, "messages": [{"role": "user", "content": "leave?"}]})
        assert streamed.status_code == 200
        assert '"code": "backend_error"' in streamed.text and streamed.text.rstrip().endswith("data: [DONE]")


def test_rate_limit_message_matches_retry_after(tmp_path):
    from fastapi.testclient import TestClient
    from serve_helpers import make_app

    app, _, _ = make_app(tmp_path, rate_limit_per_minute=120, rate_limit_burst=1)
    with TestClient(app) as client:
        client.post("/v1/search", headers=auth(PLAIN_KEY), json={"query": "leave"})
        limited = client.post("/v1/search", headers=auth(PLAIN_KEY), json={"query": "leave"})
    assert limited.status_code == 429
    seconds = int(limited.headers["Retry-After"])
    assert seconds >= 1 and f"retry in {seconds}s" in limited.json()["error"]["message"]


@pytest.mark.parametrize("field", ["id", "title", "text"])
def test_document_fields_must_be_strings(served, field):
    client, index, _ = served
    before = snapshot(index)
    body = {"id": "typed.md", "text": "Typed text.", "title": "Typed", field: {"not": "a string"}}
    response = client.post("/v1/documents", headers=auth(ADMIN_KEY), json=body)
    assert response.status_code == 400 and f"'{field}' must be a string" in response.json()["error"]["message"]
    assert snapshot(index) == before


# ---- found by a hostile probe of the server (session 19) --------------------------------------------------------
@pytest.mark.parametrize("doc_id", ["dot/./victim", "dot/.", "a//b", "a/", "./a"])
def test_ids_a_client_would_resolve_to_another_path_are_refused(served, doc_id):
    """curl and browsers drop `./` from a URL: DELETE /v1/documents/dot/./victim deleted `dot/victim`."""
    client, index, _ = served
    before = snapshot(index)
    response = send(client, "POST", "/v1/documents", '{"id": "%s", "text": "some text"}' % doc_id)
    assert response.status_code == 400 and "empty segment" in response.json()["error"]["message"]
    assert snapshot(index) == before


@pytest.mark.parametrize(("body", "words"), [
    ('{"id": "z.md", "text": "\\u200b\\u200b\\ufeff"}', "non-empty 'text'"),
    ('{"id": "z.md", "text": "\\u0000\\u0000"}', "non-empty 'text'"),
    ('{"id": "z.md", "text": "fine", "title": "%s"}' % ("T" * 501), "the limit is 500"),
    ('{"id": "z.md", "text": "fine", "title": "T\\u0000itle"}', "control characters"),
    ('{"id": "z.md", "text": "fine", "metadata": {"k\\u0000ey": "v"}}', "NUL"),
])
def test_documents_without_visible_text_or_with_a_runaway_title_are_refused(served, body, words):
    """Zero-width or NUL text became empty chunks that ranked first for blank queries; a 2 MB title went into
    every prompt that showed the document and made its questions fail as too long."""
    client, index, _ = served
    before = snapshot(index)
    response = send(client, "POST", "/v1/documents", body)
    assert response.status_code == 400 and words in response.json()["error"]["message"], response.text
    assert snapshot(index) == before


def test_a_long_stored_title_is_cut_in_the_prompt():
    from ragtune.generate.prompts import MAX_TITLE_CHARS, format_sources
    from ragtune.types import Chunk, Hit

    shown = format_sources([Hit(Chunk("a#0", "a", "Body text.", title="T" * 5000), 1.0)])
    assert shown == f"[1] {'T' * MAX_TITLE_CHARS}: Body text."


@pytest.mark.parametrize("content", ['"\\u200b\\u200b\\u200b"', '"\\u0000\\u0000"', '"  \\ufeff "'])
def test_a_question_without_visible_text_is_400(served, content):
    client, _, generator = served
    response = send(client, "POST", "/v1/chat/completions", CHAT % content)
    assert response.status_code == 400 and "no user message with text content" in response.text
    assert send(client, "POST", "/v1/search", '{"query": %s}' % content).status_code == 400
    assert generator.prompts == []


@pytest.mark.parametrize(("extra", "words"), [
    ('"max_tokens": true', "max_tokens"), ('"max_tokens": "5"', "max_tokens"), ('"n": "1"', "n"),
    ('"stream": "yes"', "stream"), ('"temperature": "hot"', "temperature"), ('"temperature": -5', "temperature"),
    ('"top_p": 7', "top_p"), ('"logprobs": true', "logprobs"), ('"tools": [{"type": "function"}]', "tools"),
    ('"response_format": {"type": "json_object"}', "response_format"),
])
def test_openai_fields_of_the_wrong_type_or_asking_for_missing_features_are_400(served, extra, words):
    """Accepted before as `true` = 1 token, "5" = 5, or silently ignored: a client must not take an ignored request
    for a granted one."""
    client, _, generator = served
    body = '{"model": "rag", %s, "messages": [{"role": "user", "content": "leave?"}]}' % extra
    response = send(client, "POST", "/v1/chat/completions", body)
    assert response.status_code == 400 and words in response.text, response.text
    assert generator.prompts == []


def test_accepted_sampling_fields_and_finish_reason_length(served):
    client, _, _ = served
    body = ('{"model": "rag", "temperature": 0.7, "top_p": 1, "logprobs": false, "tools": [], '
            '"response_format": {"type": "text"}, "max_tokens": %d, "messages": [{"role": "user", "content": "leave?"}]}')
    short, roomy = (send(client, "POST", "/v1/chat/completions", body % n).json() for n in (1, 200))
    assert short["usage"]["completion_tokens"] >= 1 and short["choices"][0]["finish_reason"] == "length"
    assert roomy["choices"][0]["finish_reason"] == "stop"


def test_head_health_and_case_of_the_content_type(served):
    client, index, _ = served
    assert client.head("/healthz").status_code == 200 and client.head("/").status_code == 200
    response = client.post("/v1/documents", content=b'{"id": "case.md", "text": "Case of a media type."}',
                           headers={**auth(ADMIN_KEY), "content-type": "Application/JSON; charset=utf-8"})
    assert response.status_code == 201, response.text


def test_file_paths_are_shown_to_admins_only(tmp_path):
    from fastapi.testclient import TestClient

    from ragtune.types import Document

    docs = [Document("p.md", "A public page about boats.", "Boats", source="/srv/secret/share/p.md")]
    app, _, _ = make_app(tmp_path, docs=docs)
    with TestClient(app) as client:
        plain = client.get("/v1/documents", headers=auth(PLAIN_KEY)).json()["data"]
        admin = client.get("/v1/documents", headers=auth(ADMIN_KEY)).json()["data"]
    assert [d["source"] for d in plain] == ["p.md"] and [d["source"] for d in admin] == ["/srv/secret/share/p.md"]


def test_guessing_keys_from_one_address_is_throttled(served):
    """Wrong keys were never limited: 401 after 401. Now an address gets 10 a minute, then 429 with Retry-After;
    callers with a valid key are not affected."""
    client, _, _ = served
    codes = [client.get("/v1/models", headers=auth(f"guess-{i:06d}")).status_code for i in range(12)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
    throttled = client.get("/v1/models", headers=auth("guess-again"))
    assert "too many requests with a missing or invalid API key" in throttled.text
    assert int(throttled.headers["Retry-After"]) >= 1
    assert client.get("/v1/models", headers=auth(ADMIN_KEY)).status_code == 200
