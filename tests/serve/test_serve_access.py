"""Access groups: no chunk a caller may not see reaches a search result, a prompt, an answer or a citation."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_helpers import ScriptedGenerator, auth, make_app

from ragtune.serve.auth import Caller, KeyStore, document_groups, parse_key_entries
from ragtune.types import Document

GROUPS = ["hr", "eng", "ops", "legal"]
WORDS = ["leave", "boat", "salary", "deploy", "budget", "survey", "harbour", "sensor", "policy", "report"]
N_DOCS = 8


def marker(i: int) -> str:
    return f"zqmarker{i}x"


def corpus(doc_groups: list[list[str]]) -> list[Document]:
    docs = []
    for i, groups in enumerate(doc_groups):
        words = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(4))
        docs.append(Document(f"d{i}.md", f"{marker(i)} {words}. The {WORDS[i % len(WORDS)]} note {marker(i)}.", f"Doc {i}",
                             metadata={"groups": groups} if groups else {}))
    return docs


def visible(doc_groups: list[str], user_groups: list[str]) -> bool:
    return not doc_groups or bool(set(doc_groups) & set(user_groups))


group_sets = st.lists(st.sampled_from(GROUPS), max_size=2, unique=True)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc_groups=st.lists(group_sets, min_size=N_DOCS, max_size=N_DOCS),
    users=st.lists(group_sets, min_size=1, max_size=3),
    queries=st.lists(st.lists(st.sampled_from(WORDS + [marker(i) for i in range(N_DOCS)]), min_size=1, max_size=3),
                     min_size=1, max_size=3),
)
def test_random_users_documents_queries_never_leak(doc_groups, users, queries):
    from fastapi.testclient import TestClient

    keys = [f"user-key-{u:04d}=" + ",".join(groups) for u, groups in enumerate(users)]
    generator = ScriptedGenerator()
    with tempfile.TemporaryDirectory() as tmp:
        app, _, _ = make_app(Path(tmp), keys=keys, docs=corpus(doc_groups), generator=generator, k=4)
        leaks = checks = 0
        with TestClient(app) as client:
            for u, user_groups in enumerate(users):
                key = f"user-key-{u:04d}"
                hidden = [i for i in range(N_DOCS) if not visible(doc_groups[i], user_groups)]
                allowed = {f"d{i}.md" for i in range(N_DOCS) if i not in hidden}
                for words in queries:
                    query = " ".join(words)
                    found = client.post("/v1/search", headers=auth(key), json={"query": query, "k": 10}).json()
                    hits = found["data"][0]["hits"]
                    leaks += sum(h["doc_id"] not in allowed for h in hits)
                    # Pre-ranking filter: every visible document that matches is reachable (k=10 > N_DOCS).
                    assert len(hits) == len(allowed)
                    n_prompts = len(generator.prompts)
                    reply = client.post("/v1/chat/completions", headers=auth(key),
                                        json={"model": "rag", "messages": [{"role": "user", "content": query}]}).json()
                    # The sources part of the prompt (the question itself may name a marker the user typed).
                    prompt = "\n".join(p.split("\n\nQuestion:")[0] for p in generator.prompts[n_prompts:])
                    content = reply["choices"][0]["message"]["content"]
                    leaks += sum(marker(i) in prompt or (marker(i) in content and marker(i) not in query) for i in hidden)
                    leaks += sum(c["doc_id"] not in allowed for c in reply["citations"])
                    leaks += sum(s["doc_id"] not in allowed for s in reply["ragtune"]["sources"])
                    listed = {d["id"] for d in client.get("/v1/documents", headers=auth(key)).json()["data"]}
                    leaks += len(listed - allowed)
                    checks += 1
        assert checks == len(users) * len(queries)
        assert leaks == 0


def test_public_means_no_groups(tmp_path):
    docs = corpus([[], ["hr"], [], ["eng"]] + [["legal"]] * (N_DOCS - 4))
    keys = ["nogroups-key-1", "hr-key-000001=hr"]
    from fastapi.testclient import TestClient

    app, _, _ = make_app(tmp_path, keys=keys, docs=docs)
    with TestClient(app) as client:
        plain = {d["id"] for d in client.get("/v1/documents", headers=auth("nogroups-key-1")).json()["data"]}
        hr = {d["id"] for d in client.get("/v1/documents", headers=auth("hr-key-000001")).json()["data"]}
    assert plain == {"d0.md", "d2.md"}  # documents without groups are public
    assert hr == {"d0.md", "d1.md", "d2.md"}


def test_regrouping_a_document_hides_it_at_once(served):
    from serve_helpers import ADMIN_KEY, PLAIN_KEY

    client, _, _ = served
    query = {"query": "annual leave days", "k": 10}
    before = [h["doc_id"] for h in client.post("/v1/search", headers=auth(PLAIN_KEY), json=query).json()["data"][0]["hits"]]
    assert "leave.md" in before
    client.put("/v1/documents/leave.md", headers=auth(ADMIN_KEY),
               json={"title": "Leave policy", "text": "Staff get 27 days of annual leave per year.", "groups": ["hr"]})
    after = [h["doc_id"] for h in client.post("/v1/search", headers=auth(PLAIN_KEY), json=query).json()["data"][0]["hits"]]
    assert "leave.md" not in after


def test_caller_visibility_rules():
    callers = KeyStore(parse_key_entries(["k-admin-001=admin", "k-hr-00001=hr,ops"], "test"))
    admin, hr = callers.lookup("k-admin-001"), callers.lookup("k-hr-00001")
    assert isinstance(hr, Caller) and hr.groups == frozenset({"hr", "ops"})
    assert callers.lookup("wrong-key-1") is None and callers.lookup(None) is None
    assert admin.can_see({"groups": ["secret"]}) and not hr.can_see({"groups": ["secret"]})
    assert hr.can_see({}) and hr.can_see({"groups": []}) and hr.can_see({"groups": ["ops", "x"]})
    assert document_groups({"groups": "hr"}) == frozenset({"hr"})


def test_search_filters_by_groups_in_the_index_without_listing_documents(tmp_path, monkeypatch):
    """The caller's groups go to the index as one filter (ACCESS_FIELD) applied before ranking; a request no
    longer lists every document to build a doc_id filter, and a request's own "@access" cannot widen it."""
    from fastapi.testclient import TestClient

    docs = corpus([[], ["hr"], ["eng"], ["hr", "eng"]] + [["legal"]] * (N_DOCS - 4))
    app, index, _ = make_app(tmp_path, keys=["hr-key-000001=hr"], docs=docs)

    def no_listing(*_args, **_kwargs):
        raise AssertionError("a search listed every document")

    with TestClient(app) as client:
        monkeypatch.setattr(type(index), "documents", no_listing)
        query = {"query": " ".join(marker(i) for i in range(N_DOCS)), "k": 10}
        hits = client.post("/v1/search", headers=auth("hr-key-000001"), json=query).json()["data"][0]["hits"]
        assert sorted(h["doc_id"] for h in hits) == ["d0.md", "d1.md", "d3.md"]
        widened = {**query, "filters": {"@access": ["legal", "eng"]}}
        response = client.post("/v1/search", headers=auth("hr-key-000001"), json=widened)
        assert response.status_code == 200
        assert sorted(h["doc_id"] for h in response.json()["data"][0]["hits"]) == ["d0.md", "d1.md", "d3.md"]
