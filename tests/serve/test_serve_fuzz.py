"""Fuzz the HTTP API: random bodies on every route never get a 5xx, and a refused request never changes the index.

Bodies are near-valid requests with random field values (strings with lone surrogates and control
characters, huge and non-finite numbers, wrong types, nesting), arbitrary JSON, and raw bytes. They are sent
as JSON text written with ensure_ascii, so a lone surrogate travels as its "\\udXXX" escape, as a client would
send it. Bounded: a fixed number of examples against one app (fake generator, hashing embedder).
"""

from __future__ import annotations

import copy
import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_helpers import ADMIN_KEY, PLAIN_KEY, auth, make_app

SURROGATES = st.characters(categories=["Cs"])
CONTROLS = st.characters(max_codepoint=0x1F)
ODD = st.sampled_from(["", " ", "\u200b", "\ufeff", "\U0001F600", "../..", "a" * 3000, "None", "null", "\x00"])
STRINGS = st.one_of(
    st.text(max_size=20),
    st.tuples(st.text(max_size=4), SURROGATES, st.text(max_size=4)).map("".join),  # always one lone surrogate
    st.lists(st.one_of(st.characters(), SURROGATES, CONTROLS), max_size=8).map("".join),
    ODD,
)
NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 2**64, 10**300]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, STRINGS)
ANY_JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(STRINGS, inner, max_size=3)), max_leaves=8)
VALUE = st.one_of(STRINGS, ANY_JSON)

TEXT = st.one_of(STRINGS, STRINGS.map(lambda s: f"annual leave {s} days"))  # often mostly valid text
PARTS = st.lists(st.fixed_dictionaries({"type": st.one_of(st.just("text"), VALUE)}, optional={"text": st.one_of(TEXT, VALUE)}),
                 max_size=3)
COUNTS = st.one_of(NUMBERS, st.integers(0, 300))

# Each route: a valid body, and per field (a path into it) what a mutation may put there. A request is the
# valid body with 0-3 fields replaced, so both the refusals and the accepted paths are exercised.
CHAT = ({"model": "rag", "messages": [{"role": "user", "content": "How many days of annual leave?"}]}, {
    ("model",): st.sampled_from(["rag", "ragtune", "base", ""]),
    ("messages",): st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]), "content": TEXT}), max_size=3),
    ("messages", 0, "role"): st.sampled_from(["user", "system", "assistant", "tool"]),
    ("messages", 0, "content"): st.one_of(TEXT, PARTS, st.none()),
    ("max_tokens",): COUNTS, ("max_completion_tokens",): COUNTS, ("n",): COUNTS,
    ("stream",): st.booleans(), ("user",): TEXT, ("temperature",): NUMBERS,
})
SEARCH = ({"query": "annual leave", "k": 3}, {
    ("query",): TEXT, ("queries",): st.lists(TEXT, max_size=40), ("k",): COUNTS,
    ("filters",): st.dictionaries(st.one_of(st.sampled_from(["doc_id", "groups", "source", "team"]), STRINGS), ANY_JSON,
                                  max_size=3),
    ("extra",): VALUE,
})
DOCUMENT = ({"id": "fuzz.md", "text": "Fuzzed note: the annual leave form is blue.", "title": "Fuzz",
             "metadata": {"team": "ops"}}, {
    ("id",): st.one_of(st.sampled_from(["fuzz.md", "leave.md", "a/b.md", "../x"]), STRINGS),
    ("text",): TEXT, ("title",): TEXT, ("groups",): st.one_of(st.lists(STRINGS, max_size=3), STRINGS),
    ("metadata",): st.one_of(st.dictionaries(STRINGS, ANY_JSON, max_size=3), STRINGS),
    ("metadata", "team"): ANY_JSON, ("metadata", "groups"): ANY_JSON, ("metadata", "screened"): ANY_JSON,
    ("extra",): VALUE,
})
NO_BODY = (None, {})
DOC_ID = st.one_of(st.sampled_from(["fuzz.md", "leave.md", "boat.md", "salaries.md", "a/b.md"]), STRINGS.filter(bool))

ROUTES = {
    ("POST", "/v1/chat/completions"): CHAT,
    ("POST", "/v1/search"): SEARCH,
    ("POST", "/v1/documents"): DOCUMENT,
    ("PUT", "/v1/documents/{id}"): ({k: v for k, v in DOCUMENT[0].items() if k != "id"}, DOCUMENT[1]),
    ("DELETE", "/v1/documents/{id}"): NO_BODY,
    ("GET", "/v1/documents"): NO_BODY,
    ("GET", "/v1/models"): NO_BODY,
}


def mutated(data, valid, fields) -> object:
    """The valid body with 0-3 of its fields replaced by a field-specific or an arbitrary value."""
    body = copy.deepcopy(valid)
    if not fields:
        return body
    for path in data.draw(st.lists(st.sampled_from(sorted(fields, key=str)), max_size=3), label="mutated fields"):
        value = data.draw(st.one_of(fields[path], fields[path], VALUE), label=f"value of {path}")
        parent = body
        for step in path[:-1]:
            parent = parent[step] if isinstance(parent, (dict, list)) and _has(parent, step) else None
        if isinstance(parent, dict) or (isinstance(parent, list) and _has(parent, path[-1])):
            parent[path[-1]] = value
    return body


def _has(container, step) -> bool:
    return step in container if isinstance(container, dict) else isinstance(step, int) and step < len(container)


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    from fastapi.testclient import TestClient

    app, index, _ = make_app(tmp_path_factory.mktemp("fuzz"), rate_limit_burst=1_000_000, max_body_bytes=200_000)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, index


def snapshot(index) -> tuple:
    return index.generation, sorted((d.doc_id, d.title, d.n_chunks, json.dumps(d.metadata, sort_keys=True, default=str))
                                    for d in index.documents())


def encode(body) -> bytes:
    if isinstance(body, bytes):
        return body
    return json.dumps(body, ensure_ascii=True, allow_nan=True).encode("ascii")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_random_requests_never_get_5xx_nor_change_the_index_when_refused(fuzz_app, data):
    client, index = fuzz_app
    method, route = data.draw(st.sampled_from(sorted(ROUTES)), label="route")
    path = route
    if "{id}" in route:
        doc_id = data.draw(DOC_ID, label="id")
        path = route.replace("{id}", quote(doc_id.encode("utf-8", "surrogatepass"), safe="/"))
    valid, fields = ROUTES[(method, route)]
    shape = data.draw(st.sampled_from(["mutated"] * 8 + ["any json", "bytes"]), label="body shape")
    if shape == "mutated":
        body = mutated(data, valid, fields)
    else:
        body = data.draw(ANY_JSON if shape == "any json" else st.binary(max_size=40), label="body")
    key = data.draw(st.sampled_from([ADMIN_KEY, ADMIN_KEY, PLAIN_KEY]), label="key")
    content_type = data.draw(st.sampled_from(["application/json"] * 10 + ["text/plain", "multipart/form-data"]),
                             label="content-type")
    before = snapshot(index)
    content = None if body is None and method in ("GET", "DELETE") else encode(body)
    response = client.request(method, path, content=content, headers={**auth(key), "content-type": content_type})
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert "error" in response.json()
        assert snapshot(index) == before, f"a refused request ({response.status_code}) changed the index"
    elif path == "/v1/chat/completions" and response.headers["content-type"].startswith("text/event-stream"):
        assert '"server_error"' not in response.text and response.text.rstrip().endswith("data: [DONE]")
