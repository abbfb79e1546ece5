"""Request-level pieces shared by the routes: the service, the authenticated caller, OpenAI-style errors,
and the check that a request body holds only valid text (every route, before anything reads it)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import HTTPException, Request

from ragtune.errors import BackendError, IndexBusyError, InputError, RagtuneError
from ragtune.serve.auth import OPEN_CALLER, Caller, key_from_headers

MAX_JSON_DEPTH = 32  # nesting of a request body (objects and arrays) beyond which it is refused
BODY_PROBLEMS = ("invalid_text", "invalid_number", "too_deep", "invalid_content")  # codes of json_problem & co


class APIError(HTTPException):
    """An error answered in OpenAI's shape: {"error": {"message", "type", "code"}}."""

    def __init__(self, status_code: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.type = type_
        self.code = code


def error_body(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": printable(message), "type": type_, "code": code, "param": None}}


def printable(text: str) -> str:
    """`text` with anything UTF-8 cannot carry (lone surrogates echoed from a request) as backslash escapes."""
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


def retry_after_s(seconds: float) -> int:
    """Whole seconds for a Retry-After header (and the message beside it): rounded up, at least 1."""
    return max(1, math.ceil(seconds))


def _text_problem(text: str, where: str) -> str | None:
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"{printable(where)} is not valid text: a lone surrogate ({printable(text[exc.start])}) at character "
                f"{exc.start} cannot be encoded as UTF-8; send UTF-8 text (surrogates only as valid pairs)")
    return None


def json_problem(value: Any, where: str = "body") -> tuple[str, str] | None:
    """(code, message) for the first thing in a decoded JSON value that is not valid data, else None.

    Refused: strings (object keys included) holding lone surrogates — they cannot be encoded, tokenized,
    hashed or stored — non-finite numbers (NaN/Infinity are not JSON, though Python's parser accepts them),
    and nesting deeper than MAX_JSON_DEPTH.
    """
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            problem = _text_problem(item, path)
            if problem:
                return "invalid_text", problem
        elif isinstance(item, float) and not math.isfinite(item):
            return "invalid_number", f"{path}: numbers must be finite, got {item}"
        elif isinstance(item, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                return "too_deep", f"{path}: nested more than {MAX_JSON_DEPTH} levels deep"
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str):
                    problem = _text_problem(key, f"a key in {path}")
                    if problem:
                        return "invalid_text", problem
                label = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{str(key)[:40]}"
                stack.append((child, label, depth + 1))
    return None


def json_validator(value: Any) -> Any:
    """A pydantic `model_validator(mode="before")` body: the body as given, or a validation error whose type
    is the json_problem code (the app answers it as that code's 400)."""
    from pydantic_core import PydanticCustomError

    problem = json_problem(value)
    if problem is not None:
        raise PydanticCustomError(problem[0], "{reason}", {"reason": problem[1]})
    return value


def check_json(value: Any, where: str = "body") -> None:
    """APIError 400 unless `value` is valid data (see json_problem)."""
    problem = json_problem(value, where)
    if problem is not None:
        raise APIError(400, problem[1], code=problem[0])


def error_for(exc: RagtuneError) -> APIError:
    """The HTTP answer to an error raised while serving: bad input 400, a busy index 503 + Retry-After,
    a failed model backend 502, a full or stopping queue 503; anything else 500."""
    from ragtune.serve.worker import QueueFullError

    if isinstance(exc, InputError):
        return APIError(400, str(exc))
    if isinstance(exc, IndexBusyError):
        wait = retry_after_s(exc.retry_after_s)
        return APIError(503, f"{exc}; retry in {wait}s", "server_error", "index_busy", headers={"Retry-After": str(wait)})
    if isinstance(exc, BackendError):
        return APIError(502, f"model backend failed: {exc}", "server_error", "backend_error")
    if isinstance(exc, QueueFullError):
        return APIError(503, f"{exc}; retry in 1s", "server_error", "overloaded", headers={"Retry-After": "1"})
    return APIError(500, str(exc), "server_error")


def get_service(request: Request) -> Any:
    return request.app.state.service


def get_caller(request: Request) -> Caller:
    """Authenticate (401 on a missing/wrong key) and rate-limit (429) the request."""
    state = request.app.state
    caller = state.keys.lookup(key_from_headers(request.headers))
    address = request.client.host if request.client else "unknown"
    if caller is None:
        failures = getattr(state, "auth_failures", None)  # keys guessed from one address are throttled
        retry = failures.acquire(f"addr-{address}") if failures is not None else None
        if retry is not None:
            state.metrics.inc("ragtune_rate_limited_total", reason="auth_failures")
            wait = retry_after_s(retry)
            raise APIError(429, f"too many requests with a missing or invalid API key from this address; retry in "
                                f"{wait}s", "rate_limit_error", "too_many_auth_failures", headers={"Retry-After": str(wait)})
        raise APIError(401, "missing or invalid API key (send 'Authorization: Bearer KEY')", "authentication_error",
                       "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
    # open (no keys): every caller is the same identity, so the limit goes per client address, as documented
    bucket = f"addr-{address}" if caller.identity == OPEN_CALLER.identity else caller.identity
    retry_after = state.limiter.acquire(bucket)
    if retry_after is not None:
        state.metrics.inc("ragtune_rate_limited_total", reason="rate_limit")
        wait = retry_after_s(retry_after)
        raise APIError(429, f"rate limit exceeded for this key; retry in {wait}s", "rate_limit_error",
                       "rate_limit_exceeded", headers={"Retry-After": str(wait)})
    return caller


def get_admin(request: Request) -> Caller:
    """A caller allowed to change documents (group 'admin'); 403 otherwise."""
    caller = get_caller(request)
    if not caller.is_admin:
        raise APIError(403, "this API key may not change documents (needs the 'admin' group)", "permission_error")
    return caller
