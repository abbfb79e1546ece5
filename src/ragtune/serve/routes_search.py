"""POST /v1/search: the same access-filtered, screened retrieval the chat route prompts with."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ragtune.serve.auth import Caller
from ragtune.serve.deps import APIError, get_caller, json_validator
from ragtune.text import has_visible_text

router = APIRouter()

MAX_QUERIES = 32
MAX_K = 50


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str | None = None
    queries: list[str] | None = None
    k: int = Field(5, ge=1, le=MAX_K)
    filters: dict[str, Any] | None = None  # metadata filters, ANDed with the caller's access filter

    _valid_json = model_validator(mode="before")(json_validator)


def hit_record(hit: Any) -> dict[str, Any]:
    chunk = hit.chunk
    return {
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "title": chunk.title,
        "text": chunk.text,
        "score": float(hit.score),
        "rank": hit.rank,
        "screened": chunk.metadata.get("screened", []),
    }


@router.post("/v1/search")
async def search(body: SearchRequest, request: Request, caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    """Top-k chunks per query among the documents the caller may see."""
    service = request.app.state.service
    queries = ([body.query] if body.query is not None else []) + list(body.queries or [])
    if not queries or len(queries) > MAX_QUERIES:
        raise APIError(400, f"give 'query' or 'queries' (1..{MAX_QUERIES} in all), got {len(queries)}")
    limit = service.settings.max_question_chars
    for query in queries:
        if not has_visible_text(query) or len(query) > limit:
            raise APIError(400, f"each query must be 1..{limit} characters with visible text, got {len(query)}")
    if body.filters and "groups" in body.filters:
        raise APIError(400, "access groups come from the API key; do not filter on 'groups'")
    results = await run_in_threadpool(service.retrieve, caller, queries, body.k, body.filters)
    return {
        "object": "list",
        "data": [
            {"query": q, "hits": [hit_record(h) for h in r.hits], "screening": {"flagged": bool(r.flags), "chunks": r.flags}}
            for q, r in zip(queries, results)
        ],
    }
