"""Live document updates: visible to the very next query, no duplicates, uploads validated like ingest."""

from __future__ import annotations

from serve_helpers import ADMIN_KEY, ENG_KEY, HR_KEY, PLAIN_KEY, auth


def ask(client, question: str, key: str = ADMIN_KEY) -> dict:
    response = client.post("/v1/chat/completions", headers=auth(key),
                           json={"model": "rag", "messages": [{"role": "user", "content": question}]})
    assert response.status_code == 200, response.text
    return response.json()


def search_ids(client, query: str, key: str = ADMIN_KEY, k: int = 10) -> list[str]:
    response = client.post("/v1/search", headers=auth(key), json={"query": query, "k": k})
    assert response.status_code == 200, response.text
    return [h["doc_id"] for h in response.json()["data"][0]["hits"]]


def test_added_document_answers_the_next_question(served):
    client, index, _ = served
    before = ask(client, "What time does the canteen open on weekdays?")
    assert all(c["doc_id"] != "canteen.md" for c in before["citations"])
    response = client.post("/v1/documents", headers=auth(ADMIN_KEY),
                           json={"id": "canteen.md", "title": "Canteen", "text": "The canteen opens at 7am on weekdays."})
    assert response.status_code == 201 and response.json()["status"] == "added"
    after = ask(client, "What time does the canteen open on weekdays?")
    assert after["citations"][0]["doc_id"] == "canteen.md"
    assert after["choices"][0]["message"]["content"].startswith("The canteen opens at 7am")


def test_replace_and_delete_are_visible_at_once_without_duplicates(served):
    client, index, _ = served
    body = {"title": "Canteen", "text": "The canteen opens at 7am on weekdays."}
    assert client.put("/v1/documents/canteen.md", headers=auth(ADMIN_KEY), json=body).status_code == 201
    again = client.put("/v1/documents/canteen.md", headers=auth(ADMIN_KEY), json=body)
    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    changed = client.put("/v1/documents/canteen.md", headers=auth(ADMIN_KEY),
                         json={"title": "Canteen", "text": "The canteen now opens at 8am on weekdays."})
    assert changed.json()["status"] == "replaced"
    answer = ask(client, "When does the canteen open?")
    assert answer["choices"][0]["message"]["content"].startswith("The canteen now opens at 8am")
    hits = client.post("/v1/search", headers=auth(ADMIN_KEY), json={"query": "canteen opens", "k": 10}).json()
    texts = [h["text"] for h in hits["data"][0]["hits"] if h["doc_id"] == "canteen.md"]
    assert texts == ["The canteen now opens at 8am on weekdays."]  # one version only, the new one
    assert sum(d.doc_id == "canteen.md" for d in index.documents()) == 1

    deleted = client.delete("/v1/documents/canteen.md", headers=auth(ADMIN_KEY))
    assert deleted.status_code == 200 and deleted.json()["chunks_removed"] == 1
    assert "canteen.md" not in search_ids(client, "canteen opens")
    assert client.delete("/v1/documents/canteen.md", headers=auth(ADMIN_KEY)).status_code == 404


def test_post_existing_id_conflicts(served):
    client, _, _ = served
    response = client.post("/v1/documents", headers=auth(ADMIN_KEY), json={"id": "leave.md", "text": "Other text."})
    assert response.status_code == 409
    assert "PUT" in response.json()["error"]["message"]


def test_only_admin_keys_write(served):
    client, _, _ = served
    for key in (HR_KEY, PLAIN_KEY):
        response = client.post("/v1/documents", headers=auth(key), json={"id": "x.md", "text": "Hello there."})
        assert response.status_code == 403
        assert client.delete("/v1/documents/leave.md", headers=auth(key)).status_code == 403


def test_list_documents_respects_groups(served):
    client, _, _ = served
    ids = lambda key: sorted(d["id"] for d in client.get("/v1/documents", headers=auth(key)).json()["data"])  # noqa: E731
    assert ids(PLAIN_KEY) == ["boat.md", "leave.md"]
    assert ids(HR_KEY) == ["boat.md", "leave.md", "salaries.md"]
    assert ids(ENG_KEY) == ["boat.md", "deploy.md", "leave.md"]
    assert ids(ADMIN_KEY) == ["boat.md", "deploy.md", "leave.md", "salaries.md"]


def test_list_documents_pages_by_id_within_the_callers_groups(served):
    """GET /v1/documents pages (?limit, ?after=last_id, has_more) in id order; a page is cut after the access
    filter, and a cursor whose document was deleted meanwhile still pages on."""
    client, _, _ = served

    def page(key: str, **params) -> dict:
        response = client.get("/v1/documents", headers=auth(key), params=params)
        assert response.status_code == 200, response.text
        return response.json()

    first = page(ADMIN_KEY, limit=2)
    assert [d["id"] for d in first["data"]] == ["boat.md", "deploy.md"]
    assert (first["first_id"], first["last_id"], first["has_more"]) == ("boat.md", "deploy.md", True)
    second = page(ADMIN_KEY, limit=2, after=first["last_id"])
    assert [d["id"] for d in second["data"]] == ["leave.md", "salaries.md"] and second["has_more"] is False
    assert [d["id"] for d in page(HR_KEY, limit=2, after="boat.md")["data"]] == ["leave.md", "salaries.md"]
    assert [d["id"] for d in page(PLAIN_KEY, limit=1, after="boat.md")["data"]] == ["leave.md"]
    assert client.delete("/v1/documents/deploy.md", headers=auth(ADMIN_KEY)).status_code == 200
    assert [d["id"] for d in page(ADMIN_KEY, limit=5, after="deploy.md")["data"]] == ["leave.md", "salaries.md"]
    empty = page(ADMIN_KEY, after="zzz")
    assert (empty["data"], empty["first_id"], empty["last_id"], empty["has_more"]) == ([], None, None, False)
    for bad in ({"limit": 0}, {"limit": 1001}, {"limit": "many"}):
        response = client.get("/v1/documents", headers=auth(ADMIN_KEY), params=bad)
        assert response.status_code == 400 and "limit" in response.json()["error"]["message"]


def test_file_upload_with_groups_and_metadata(served):
    client, _, _ = served
    response = client.post(
        "/v1/documents", headers=auth(ADMIN_KEY),
        files={"file": ("../../etc/passwd.md", b"# Bike shed\n\nBikes are parked in shed B behind the lab.", "text/markdown")},
        data={"groups": "eng", "metadata": '{"year": 2025}'},
    )
    assert response.status_code == 201, response.text
    doc_id = response.json()["id"]
    assert "/" not in doc_id and ".." not in doc_id  # the client's path is never used
    listed = {d["id"]: d for d in client.get("/v1/documents", headers=auth(ENG_KEY)).json()["data"]}
    assert listed[doc_id]["groups"] == ["eng"] and listed[doc_id]["metadata"]["year"] == 2025
    assert listed[doc_id]["source"] == "upload:passwd.md"
    assert doc_id in search_ids(client, "where are bikes parked", key=ENG_KEY)
    assert doc_id not in search_ids(client, "where are bikes parked", key=HR_KEY)


def test_uploads_are_validated_like_ingest(served):
    client, _, _ = served
    cases = [
        (("evil.exe", b"MZ\x00\x00", "application/octet-stream"), 415, "unsupported file type"),
        (("latin.txt", "caf\xe9 au lait".encode("latin-1"), "text/plain"), 422, "not valid UTF-8"),
        (("blank.md", b"   \n\n", "text/markdown"), 422, "empty"),
        (("binary.txt", b"abc\x00def" * 10, "text/plain"), 422, "binary file"),
    ]
    for file, status, reason in cases:
        response = client.post("/v1/documents", headers=auth(ADMIN_KEY), files={"file": file})
        assert response.status_code == status, (file[0], response.text)
        assert reason in response.json()["error"]["message"]
    bad_id = client.post("/v1/documents", headers=auth(ADMIN_KEY), json={"id": "../x", "text": "hello"})
    assert bad_id.status_code == 400
    bad_group = client.post("/v1/documents", headers=auth(ADMIN_KEY), json={"id": "a.md", "text": "hi", "groups": ["a b"]})
    assert bad_group.status_code == 400


def test_upload_size_limit(tmp_path):
    from fastapi.testclient import TestClient
    from serve_helpers import make_app

    app, _, _ = make_app(tmp_path, max_upload_bytes=2048)
    with TestClient(app) as client:
        big = b"word " * 1000  # 5000 bytes
        response = client.post("/v1/documents", headers=auth(ADMIN_KEY), files={"file": ("big.txt", big, "text/plain")})
        assert response.status_code == 413
        assert client.post("/v1/documents", headers=auth(ADMIN_KEY), json={"text": "x" * 3000}).status_code == 413


def test_external_ingest_is_picked_up(served, monkeypatch):
    """A commit made by another process/Index instance becomes visible without a restart."""
    from ragtune.index import HashEmbedder, Index
    from ragtune.serve import service as service_module
    from ragtune.types import Document

    client, index, _ = served
    monkeypatch.setattr(service_module, "RELOAD_EVERY_S", 3600.0)  # a folder index is checked on every request
    assert "parking.md" not in search_ids(client, "visitor parking aquarium")
    other = Index.open(index.path, embedder=HashEmbedder())
    other.add_documents([Document("parking.md", "Visitor parking is behind the aquarium.", "Parking")])
    assert "parking.md" in search_ids(client, "visitor parking aquarium")  # the very next request
    other.delete_documents(["parking.md"])  # a CLI delete was still found for up to 0.5 s
    assert "parking.md" not in search_ids(client, "visitor parking aquarium")
