"""OpenAI-compatible routes: GET /v1/models and POST /v1/chat/completions (JSON or server-sent events).

The `model` of a request names an arm (base, rag, ft, ft_rag, raft) the server loaded. The question is the
last user message; earlier turns are not sent to the model (every answer is grounded on fresh retrieval).
Answers carry their citations twice: as [n] markers plus a "Sources:" list in the message content, and as
structured data in the response's extra fields `citations` and `ragtune`.

Streaming (`stream: true`) with a local model sends the text as the model decodes it (the request is
answered on its own, not batched), then the "Sources:" list; other backends send the finished answer in word
pieces. The final chunk carries `citations` and `ragtune`; the streamed text is the model's raw reply, the
non-streamed content its parsed answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ragtune.errors import RagtuneError
from ragtune.generate.prompts import MAX_TITLE_CHARS
from ragtune.serve.auth import Caller
from ragtune.serve.deps import APIError, error_body, error_for, get_caller, json_validator, retry_after_s
from ragtune.serve.worker import QueueFullError
from ragtune.text import has_visible_text
from ragtune.types import Prediction

router = APIRouter()

CITATION_TEXT_CHARS = 500
ADMIT_SHARE = 0.8  # admitted chat work must be expected to finish within this share of the request timeout


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    @field_validator("content")
    @classmethod
    def _text_parts_hold_text(cls, content: Any) -> Any:
        if isinstance(content, list):
            for number, part in enumerate(content):
                if part.get("type") == "text" and not isinstance(part.get("text"), str):
                    got = type(part["text"]).__name__ if "text" in part else "nothing"
                    raise PydanticCustomError("invalid_content", "{reason}", {
                        "reason": f"content part {number} has type 'text' but its 'text' is {got}, not a string"})
        return content


class ChatRequest(BaseModel):
    """The fields ragtune reads; anything else an OpenAI client sends (temperature, user, ...) is accepted."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage]
    # strict: `true` is not 1 token and "5" is not 5, as OpenAI's API reads them
    max_tokens: int | None = Field(None, strict=True)
    max_completion_tokens: int | None = Field(None, strict=True)
    stream: bool = Field(False, strict=True)
    n: int = Field(1, strict=True)

    _valid_json = model_validator(mode="before")(json_validator)


def message_text(message: ChatMessage) -> str:
    """The text of a message: a string, or its text parts (strings, checked by ChatMessage) joined by lines."""
    if isinstance(message.content, str):
        return message.content
    if isinstance(message.content, list):
        return "\n".join(p["text"] for p in message.content if p.get("type") == "text")
    return ""


def resolve_arm(request: Request, model: str) -> str:
    arms = request.app.state.service.settings.arms
    if model in arms:
        return model
    if model in ("ragtune", "default", ""):
        return arms[0]
    raise APIError(404, f"model {model!r} is not served here; available: {', '.join(arms)}", code="model_not_found")


# OpenAI request fields ragtune accepts but does not use (answers are greedy), and the values each may take.
_SAMPLING_RANGES = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0), "presence_penalty": (-2.0, 2.0),
                    "frequency_penalty": (-2.0, 2.0)}


def check_sampling(extra: dict[str, Any]) -> None:
    """APIError 400 for a sampling field out of OpenAI's range, or a feature asked for that ragtune does not have
    (tools, log-probabilities, JSON output): a client must not take an ignored request for a granted one."""
    for name, (low, high) in _SAMPLING_RANGES.items():
        value = extra.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not low <= value <= high):
            raise APIError(400, f"{name} must be a number from {low:g} to {high:g}, got {value!r}", code=name)
    if extra.get("tools") or extra.get("functions"):
        raise APIError(400, "tools and function calling are not supported", code="tools")
    if extra.get("logprobs") or extra.get("top_logprobs"):
        raise APIError(400, "logprobs are not supported", code="logprobs")
    response_format = extra.get("response_format")
    if response_format is not None and (not isinstance(response_format, dict) or response_format.get("type") != "text"):
        raise APIError(400, f"response_format {response_format!r} is not supported (only {{'type': 'text'}})",
                       code="response_format")


def finish_reason(prediction: Prediction, max_tokens: int) -> str:
    """OpenAI's finish_reason: "length" when the answer used every token it was allowed, else "stop"."""
    return "length" if prediction.kept_answer_tokens >= max_tokens else "stop"


def validate_chat(request: Request, body: ChatRequest) -> tuple[str, str, int]:
    """(arm, question, max_tokens) after every request limit is checked."""
    settings = request.app.state.service.settings
    arm = resolve_arm(request, body.model)
    if body.n != 1:
        raise APIError(400, f"n={body.n} is not supported (only 1)")
    if not body.messages or len(body.messages) > settings.max_messages:
        raise APIError(400, f"messages must hold 1..{settings.max_messages} messages, got {len(body.messages)}")
    users = [m for m in body.messages if m.role == "user"]
    question = message_text(users[-1]).strip() if users else ""
    if not has_visible_text(question):
        raise APIError(400, "no user message with text content")
    check_sampling(body.model_extra or {})
    if len(question) > settings.max_question_chars:
        raise APIError(400, f"question is {len(question)} characters; the limit is {settings.max_question_chars}",
                       code="question_too_long")
    given = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    max_tokens = settings.default_max_tokens if given is None else given  # 0 is refused below, not defaulted
    if not 1 <= max_tokens <= settings.max_tokens_limit:
        raise APIError(400, f"max_tokens must be between 1 and {settings.max_tokens_limit}, got {max_tokens}",
                       code="max_tokens")
    return arm, question, max_tokens


def answer_content(prediction: Prediction, cites: list[dict]) -> str:
    """The message text: answer, [n] markers, then a numbered 'Sources:' list."""
    text = prediction.answer.strip() or "(no answer)"
    markers = "".join(f"[{c['number']}]" for c in cites)
    content = f"{text} {markers}".strip()
    if cites:
        lines = [f"[{c['number']}] {(c['title'] or c['doc_id'])[:MAX_TITLE_CHARS]} ({c['doc_id']})" for c in cites]
        content += "\n\nSources:\n" + "\n".join(lines)
    return content


def ragtune_extra(prediction: Prediction, cites: list[dict], flags: list[dict], model_id: str) -> dict[str, Any]:
    return {
        "arm": prediction.arm,
        "generator": model_id,
        "answer": prediction.answer,
        "citations": cites,
        "sources": [
            {"number": n, "doc_id": h.chunk.doc_id, "title": h.chunk.title, "chunk_id": h.chunk.chunk_id, "score": float(h.score)}
            for n, h in enumerate(prediction.hits, start=1)
        ],
        "screening": {"flagged": bool(flags), "chunks": flags},
        "timings": {"retrieve_ms": round(prediction.retrieve_ms, 2), "generate_ms": round(prediction.generate_ms, 2)},
    }


async def _submit(request: Request, caller: Caller, arm: str, question: str, max_tokens: int,
                  on_text: Any = None) -> tuple[Any, Any, float]:
    """Retrieve + screen (thread pool), then queue the generation: (future, Retrieved or None, deadline)."""
    service = request.app.state.service
    deadline = time.monotonic() + service.settings.request_timeout_s
    # Admission control: requests still retrieving count against the queue too, so overload is shed at once
    # instead of after a retrieval. (The counter is only touched on the event loop: no lock needed.)
    refusal = admission(service)
    if refusal is not None:
        _overloaded(service, *refusal)
    service.admitting += 1
    try:
        retrieved = await run_in_threadpool(service.prepare, caller, arm, question)
        future = service.worker.submit(arm, question, retrieved.hits if retrieved else None, max_tokens, on_text)
    except QueueFullError as exc:
        _overloaded(service, "queue_full", str(exc), service.worker.seconds_per_job or 1.0)
    finally:
        service.admitting -= 1
    return future, retrieved, deadline


def admission(service: Any) -> tuple[str, str, float] | None:
    """None to admit a chat request now, else (metric reason, message, seconds until it could be admitted).

    Admitted work must finish within ADMIT_SHARE of the request timeout at the worker's measured seconds
    per job, so overload is a 429 at once, never a 504 after a long wait. Until a first batch has been
    measured, one batch's worth is admitted. The queue size stays a hard cap.
    """
    settings, worker = service.settings, service.worker
    if worker.depth() + service.admitting >= settings.queue_size:
        return "queue_full", f"generation queue full ({settings.queue_size} waiting)", worker.seconds_per_job or 1.0
    wait = worker.estimated_wait_s(ahead=service.admitting)
    if wait is None:
        if worker.depth() + worker.running() + service.admitting >= settings.max_batch:
            return "overloaded", "the first answers are still being measured", 1.0
        return None
    budget = ADMIT_SHARE * settings.request_timeout_s
    if wait > budget:
        return ("overloaded", f"about {wait:.0f}s of queued work, more than can finish within the "
                f"{settings.request_timeout_s:g}s request timeout", wait - budget)
    return None


def _overloaded(service: Any, reason: str, message: str, retry_after: float) -> None:
    service.metrics.inc("ragtune_rate_limited_total", reason=reason)
    wait = retry_after_s(retry_after)
    raise APIError(429, f"server overloaded: {message}; retry in {wait}s", "rate_limit_error", "overloaded",
                   headers={"Retry-After": str(wait)})


async def _wait(request: Request, future: Any, retrieved: Any, deadline: float) -> Prediction:
    try:
        prediction = await asyncio.wait_for(asyncio.wrap_future(future), max(0.0, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        future.cancel()
        timeout = request.app.state.service.settings.request_timeout_s
        raise APIError(504, f"request timed out after {timeout:g}s", "timeout_error") from None
    # The worker saw prepared hits; the real retrieval time was measured when they were fetched.
    return dataclasses.replace(prediction, retrieve_ms=retrieved.retrieve_ms) if retrieved else prediction


@router.get("/v1/models")
async def list_models(request: Request, caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    """The arms this server answers with, as OpenAI model objects."""
    service = request.app.state.service
    data = [
        {"id": arm, "object": "model", "created": request.app.state.started, "owned_by": "ragtune",
         "description": service.arm_specs[arm].description, "generator": service.generators[arm].model_id}
        for arm in service.settings.arms
    ]
    return {"object": "list", "data": data}


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, request: Request, caller: Caller = Depends(get_caller)) -> Any:
    """Answer the last user message with the requested arm (retrieval → screening → batched generation)."""
    from ragtune.pipeline import citations

    arm, question, max_tokens = validate_chat(request, body)
    service = request.app.state.service
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    model_id = service.generators[arm].model_id
    # Limits, auth and a full queue fail before anything is sent; later errors become an SSE error event.
    if body.stream:
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str] = asyncio.Queue()

        def on_text(text: str) -> None:  # called on the generation thread while the model decodes
            loop.call_soon_threadsafe(pieces.put_nowait, text)

        future, retrieved, deadline = await _submit(request, caller, arm, question, max_tokens, on_text)
        waiting = asyncio.ensure_future(_wait(request, future, retrieved, deadline))
        flags = retrieved.flags if retrieved else []
        return StreamingResponse(_stream(waiting, pieces, flags, completion_id, created, arm, model_id, max_tokens),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    future, retrieved, deadline = await _submit(request, caller, arm, question, max_tokens)
    flags = retrieved.flags if retrieved else []
    prediction = await _wait(request, future, retrieved, deadline)
    cites = citations(prediction, max_text_chars=CITATION_TEXT_CHARS)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": arm,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer_content(prediction, cites)},
                     "finish_reason": finish_reason(prediction, max_tokens), "logprobs": None}],
        "usage": {"prompt_tokens": prediction.prompt_tokens, "completion_tokens": prediction.completion_tokens,
                  "total_tokens": prediction.prompt_tokens + prediction.completion_tokens},
        "citations": cites,
        "ragtune": ragtune_extra(prediction, cites, flags, model_id),
    }


_PIECE = re.compile(r"\S+\s*|\s+")


def _sse(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


async def _stream(waiting: asyncio.Future, pieces: asyncio.Queue, flags: list[dict], completion_id: str, created: int,
                  arm: str, model_id: str, max_tokens: int):
    """SSE chunks: the role, then the model's text as it is decoded (a local model), or the finished answer in
    word pieces (other backends), then the sources and a final chunk carrying `citations` and `ragtune`."""
    from ragtune.pipeline import citations

    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> dict:
        return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": arm,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}

    yield _sse(chunk({"role": "assistant", "content": ""}))
    streamed = False
    try:
        while not waiting.done() or not pieces.empty():
            if pieces.empty():
                getter = asyncio.ensure_future(pieces.get())
                await asyncio.wait({getter, waiting}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    continue
                text = getter.result()
            else:
                text = pieces.get_nowait()
            first, streamed = not streamed, True
            yield _sse(chunk({"content": text.lstrip() if first else text}))
        prediction = await waiting
    except (APIError, RagtuneError) as exc:  # the response has started: the error goes out as an event
        error = exc if isinstance(exc, APIError) else error_for(exc)
        yield _sse(error_body(str(error.detail), error.type, error.code))
        yield "data: [DONE]\n\n"
        return
    finally:
        if not waiting.done():  # the client went away: stop waiting (a queued job is then skipped)
            waiting.cancel()
    cites = citations(prediction, max_text_chars=CITATION_TEXT_CHARS)
    if streamed:  # the raw decoded text went out; add what the non-streamed content carries beyond it
        full = answer_content(prediction, cites)
        tail = full[full.index("\n\nSources:"):] if "\n\nSources:" in full else ""
        if cites and not prediction.cited:  # the model cited nothing itself: point at the backing passages
            tail = " " + "".join(f"[{c['number']}]" for c in cites) + tail
    else:
        tail = answer_content(prediction, cites)
    for piece in _PIECE.findall(tail):
        yield _sse(chunk({"content": piece}))
        await asyncio.sleep(0)
    usage = {"prompt_tokens": prediction.prompt_tokens, "completion_tokens": prediction.completion_tokens,
             "total_tokens": prediction.prompt_tokens + prediction.completion_tokens}
    yield _sse(chunk({}, finish_reason(prediction, max_tokens), usage=usage, citations=cites, ragtune=ragtune_extra(prediction, cites, flags, model_id)))
    yield "data: [DONE]\n\n"
