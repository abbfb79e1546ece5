"""Request-level pieces shared by the routes: the service, the authenticated caller, OpenAI-style errors."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request

from ragtune.serve.auth import Caller, key_from_headers


class APIError(HTTPException):
    """An error answered in OpenAI's shape: {"error": {"message", "type", "code"}}."""

    def __init__(self, status_code: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.type = type_
        self.code = code


def error_body(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code, "param": None}}


def get_service(request: Request) -> Any:
    return request.app.state.service


def get_caller(request: Request) -> Caller:
    """Authenticate (401 on a missing/wrong key) and rate-limit (429) the request."""
    state = request.app.state
    caller = state.keys.lookup(key_from_headers(request.headers))
    if caller is None:
        raise APIError(401, "missing or invalid API key (send 'Authorization: Bearer KEY')", "authentication_error",
                       "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
    retry_after = state.limiter.acquire(caller.identity)
    if retry_after is not None:
        state.metrics.inc("ragtune_rate_limited_total", reason="rate_limit")
        raise APIError(429, f"rate limit exceeded for this key; retry in {retry_after:.1f}s", "rate_limit_error",
                       "rate_limit_exceeded", headers={"Retry-After": str(max(1, round(retry_after)))})
    return caller


def get_admin(request: Request) -> Caller:
    """A caller allowed to change documents (group 'admin'); 403 otherwise."""
    caller = get_caller(request)
    if not caller.is_admin:
        raise APIError(403, "this API key may not change documents (needs the 'admin' group)", "permission_error")
    return caller
