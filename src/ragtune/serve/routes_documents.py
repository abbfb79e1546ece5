"""Live document updates: POST/GET /v1/documents, PUT/DELETE /v1/documents/{id}.

GET lists the documents a caller may see by id, a page at a time (`?limit=` 1-1000, default 100; `?after=` the
previous page's `last_id`; `has_more` says another page follows), as OpenAI's list endpoints page.

Bodies are JSON ({"id", "text", "title", "metadata", "groups"}) or multipart form data (a `file` plus the
same fields, metadata as a JSON string and groups comma-separated). Uploads are validated as ingest does
(type by extension, size, encoding via the same loaders); the upload is written to a fresh temp folder
under a generated name — the client's file name is never used as a path. Every change is one atomic index
commit, visible to the very next query; a changed document replaces its old chunks, an identical one is a
no-op, so there are never duplicates.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import unicodedata
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ragtune.serve.auth import GROUPS_FIELD, Caller
from ragtune.serve.deps import APIError, check_json, get_admin, get_caller
from ragtune.serve.service import document_record
from ragtune.text import has_visible_text
from ragtune.types import Document

router = APIRouter()

UPLOAD_EXTENSIONS = (".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf")
DOC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/:]{0,199}$")
GROUP = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_METADATA_KEYS = 32
MAX_METADATA_CHARS = 8192
MAX_TITLE_CHARS = 500
LIST_LIMIT, MAX_LIST_LIMIT = 100, 1000  # documents per page of GET /v1/documents: the default and the most


def check_doc_id(doc_id: str) -> str:
    """The id, or APIError 400. No `.`, `..` or empty path segment and no trailing `/`: clients (browsers, curl)
    resolve those in a URL, so `DELETE /v1/documents/a/./b` would reach another document than the one named."""
    if not DOC_ID.match(doc_id) or any(part in ("", ".", "..") for part in doc_id.split("/")):
        raise APIError(400, f"bad document id {doc_id[:80]!r}: use 1-200 of letters, digits and . _ - / : "
                            "(no '.', '..' or empty segment between slashes)")
    return doc_id


def check_title(title: str) -> str:
    """The title, or APIError 400: at most MAX_TITLE_CHARS, no control characters (it goes into every prompt and
    source line that shows the document)."""
    if len(title) > MAX_TITLE_CHARS:
        raise APIError(400, f"title is {len(title)} characters; the limit is {MAX_TITLE_CHARS}")
    if any(unicodedata.category(ch) == "Cc" for ch in title):
        raise APIError(400, f"title {title[:80]!r} holds control characters")
    return title


def parse_groups(value: Any) -> list[str] | None:
    """Groups from a list or a comma-separated string; None when not given."""
    if value is None or value == "":
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise APIError(400, f"groups must be a list of names or a comma-separated string, got {value!r}")
    groups = sorted({str(g).strip() for g in items if str(g).strip()})
    bad = [g for g in groups if not GROUP.match(g)]
    if bad:
        raise APIError(400, f"bad group name {bad[0][:80]!r}: use 1-64 of letters, digits and _ . -")
    return groups


def parse_json_body(data: bytes) -> dict[str, Any]:
    """The JSON object of a request body; APIError 400 naming what is wrong (UTF-8, syntax, depth, type)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise APIError(400, f"body is not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}",
                       code="invalid_text") from None
    fields = _loads(text, "body")
    if not isinstance(fields, dict):
        raise APIError(400, "body must be a JSON object")
    return fields


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise APIError(400, f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise APIError(400, f"{what} is nested too deeply", code="too_deep") from None


def parse_metadata(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        value = _loads(value, "metadata")
        check_json(value, "metadata")
    if not isinstance(value, dict):
        raise APIError(400, f"metadata must be a JSON object, got {type(value).__name__}")
    if _has_nul(value):
        raise APIError(400, "metadata holds a NUL character")
    if len(value) > MAX_METADATA_KEYS or len(json.dumps(value, default=str)) > MAX_METADATA_CHARS:
        raise APIError(400, f"metadata too large (at most {MAX_METADATA_KEYS} keys, {MAX_METADATA_CHARS} characters)")
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return isinstance(value, list) and any(_has_nul(v) for v in value)


def _safe_name(filename: str) -> str:
    """A display-only version of the client's file name (never used as a path)."""
    return re.sub(r"[^A-Za-z0-9._\-]", "_", Path(filename.replace("\\", "/")).name)[:100] or "upload"


def load_upload(data: bytes, filename: str, doc_id: str, max_bytes: int) -> Document:
    """Validate and load one uploaded file with the ingest loaders; APIError with the reason when refused."""
    from ragtune.ingest import load_file

    ext = Path(filename.replace("\\", "/")).suffix.lower()
    if ext not in UPLOAD_EXTENSIONS:
        raise APIError(415, f"unsupported file type {ext or '(none)'!r}; allowed: {', '.join(UPLOAD_EXTENSIONS)}",
                       code="unsupported_file_type")
    if len(data) > max_bytes:
        raise APIError(413, f"file is {len(data)} bytes; the limit is {max_bytes}", code="file_too_large")
    folder = Path(tempfile.mkdtemp(prefix="ragtune-upload-"))
    try:
        path = folder / f"upload-{uuid.uuid4().hex[:12]}{ext}"  # generated name: the client's never touches disk
        path.write_bytes(data)
        items = list(load_file(path, doc_id))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    docs = [i for i in items if isinstance(i, Document)]
    if not docs:
        reason = items[0].reason if items else "no document found"
        raise APIError(422, f"cannot ingest {_safe_name(filename)!r}: {reason}", code="invalid_document")
    return docs[0]


async def read_document(request: Request, doc_id: str | None) -> Document:
    """The Document described by a JSON or multipart body (doc_id from the path wins over the body's)."""
    settings = request.app.state.service.settings
    content_type = request.headers.get("content-type", "")
    upload = None
    if content_type.lower().startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=16)
        fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise APIError(400, "multipart upload needs a 'file' part")
    elif content_type.lower().startswith("application/json"):
        fields = parse_json_body(await request.body())
    else:
        raise APIError(415, f"send application/json or multipart/form-data, not {content_type or 'nothing'!r}")
    check_json(fields)
    unknown = set(fields) - {"id", "text", "title", "metadata", "groups"}
    if unknown:
        raise APIError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
    for name in ("id", "title", "text"):
        if fields.get(name) is not None and not isinstance(fields[name], str):
            raise APIError(400, f"'{name}' must be a string, got {type(fields[name]).__name__}")
    body_id = fields.get("id") or None
    if doc_id is not None and body_id is not None and body_id != doc_id:
        raise APIError(400, f"id in the body ({body_id!r}) differs from the path ({doc_id!r})")
    doc_id = check_doc_id(str(doc_id or body_id or (_safe_name(upload.filename or "") if upload else f"doc-{uuid.uuid4().hex[:12]}")))
    metadata = parse_metadata(fields.get("metadata"))
    groups = parse_groups(fields.get("groups"))
    if groups is None:
        groups = parse_groups(metadata.get(GROUPS_FIELD)) or []
    metadata.pop(GROUPS_FIELD, None)
    metadata.pop("screened", None)  # reserved for screening results
    if groups:
        metadata[GROUPS_FIELD] = groups
    title = check_title(str(fields.get("title") or "").strip())
    if upload is not None:
        data = await upload.read(settings.max_upload_bytes + 1)
        loaded = await run_in_threadpool(load_upload, data, upload.filename or "", doc_id, settings.max_upload_bytes)
        return Document(doc_id=doc_id, text=loaded.text, title=title or loaded.title,
                        source=f"upload:{_safe_name(upload.filename or '')}", metadata={**loaded.metadata, **metadata})
    text = fields.get("text")
    if not isinstance(text, str) or not has_visible_text(text):
        raise APIError(400, "a JSON document needs a non-empty 'text' (or upload a file as multipart/form-data)")
    if len(text.encode("utf-8")) > settings.max_upload_bytes:
        raise APIError(413, f"text is larger than {settings.max_upload_bytes} bytes", code="file_too_large")
    return Document(doc_id=doc_id, text=text, title=title, source="api", metadata=metadata)


async def _write(request: Request, doc: Document, create_only: bool) -> JSONResponse:
    service = request.app.state.service
    try:
        result = await run_in_threadpool(service.put_document, doc, create_only)
    except FileExistsError:
        raise APIError(409, f"document {doc.doc_id!r} exists; use PUT /v1/documents/{doc.doc_id} to replace it",
                       code="document_exists") from None
    return JSONResponse(result, status_code=201 if result["status"] == "added" else 200)


@router.post("/v1/documents")
async def add_document(request: Request, caller: Caller = Depends(get_admin)) -> JSONResponse:
    """Add a new document (409 if the id exists)."""
    return await _write(request, await read_document(request, None), create_only=True)


@router.put("/v1/documents/{doc_id:path}")
async def put_document(doc_id: str, request: Request, caller: Caller = Depends(get_admin)) -> JSONResponse:
    """Create or replace the document with this id."""
    return await _write(request, await read_document(request, check_doc_id(doc_id)), create_only=False)


@router.delete("/v1/documents/{doc_id:path}")
async def delete_document(doc_id: str, request: Request, caller: Caller = Depends(get_admin)) -> dict[str, Any]:
    """Delete a document and its chunks (404 if unknown)."""
    service = request.app.state.service
    try:
        return await run_in_threadpool(service.delete_document, caller, doc_id)
    except KeyError:
        raise APIError(404, f"no document {doc_id[:200]!r}", code="document_not_found") from None


@router.get("/v1/documents")
async def list_documents(request: Request, caller: Caller = Depends(get_caller),
                         limit: int = Query(LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT),
                         after: str | None = Query(None, max_length=400)) -> dict[str, Any]:
    """The live documents this caller may see, in id order: `limit` of them after the id `after` (which need not
    exist any more: a page stays right when documents change between calls)."""
    service = request.app.state.service
    docs = sorted((d for d in await run_in_threadpool(service.visible_documents, caller)
                   if after is None or d.doc_id > after), key=lambda d: d.doc_id)
    page = docs[:limit]
    return {"object": "list", "data": [document_record(d, full_source=caller.is_admin) for d in page],
            "first_id": page[0].doc_id if page else None, "last_id": page[-1].doc_id if page else None,
            "has_more": len(docs) > limit}
