"""The HTTP app factory. Nothing starts at import: `create_app(settings)` loads the index and models once.

>>> app = create_app(ServeSettings(index="my-index", arms=("rag",)))    # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)                      # doctest: +SKIP

Tests inject components: `create_app(settings, index=Index.create(tmp, embedder=HashEmbedder()),
generators={"rag": FakeGenerator()})`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragtune.errors import ConfigError, RagtuneError
from ragtune.serve.settings import ServeSettings, is_loopback

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
UPLOAD_PATHS = ("/v1/documents",)
AUTH_FAILURES_PER_MINUTE = 10.0  # requests with a missing or wrong key, per client address, before 429s


class _BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` when a chunked body passes the limit; an HTTPException so that FastAPI's body
    parsing re-raises it (any other error there becomes a 400) and the handler answers 413."""

    def __init__(self) -> None:
        super().__init__(413, "request body too large")
        self.code = "body_too_large"


class LimitsAndMetrics:
    """ASGI middleware: refuses oversized bodies (413) and records request counts and latencies."""

    def __init__(self, app: Any, settings: ServeSettings, metrics: Any):
        self.app = app
        self.settings = settings
        self.metrics = metrics

    def _limit(self, path: str) -> int:
        if path.startswith(UPLOAD_PATHS):
            return self.settings.max_upload_bytes + 65536  # multipart framing around one file
        return self.settings.max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}
        limit = self._limit(scope["path"])
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _send_json(send, 413, {"error": {"message": f"request body larger than {limit} bytes",
                                                   "type": "invalid_request_error", "code": "body_too_large", "param": None}})
            self._record(scope, 413, start)
            return
        received = 0

        async def counted_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # a chunked body (no content-length) past the limit
                    raise _BodyTooLarge()
            return message

        async def recording_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, counted_receive, recording_send)
        except _BodyTooLarge:
            if status["code"] != 500:  # the response already started: nothing more can be sent
                raise
            status["code"] = 413
            await _send_json(send, 413, {"error": {"message": f"request body larger than {limit} bytes",
                                                   "type": "invalid_request_error", "code": "body_too_large", "param": None}})
        finally:
            self._record(scope, status["code"], start)

    def _record(self, scope: dict, code: int, start: float) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None) or ("static" if scope["path"].startswith("/static") else "unmatched")
        self.metrics.inc("ragtune_requests_total", route=path, method=scope["method"], status=str(code))
        self.metrics.observe("ragtune_request_duration_seconds", time.perf_counter() - start, route=path)


async def _send_json(send: Any, status: int, body: dict) -> None:
    import json

    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def load_generators(settings: ServeSettings) -> dict[str, Any]:
    """One generator per arm; arms sharing a model and adapter share one loaded model."""
    from ragtune.arms import ARMS
    from ragtune.generate import load_generator

    generators = {}
    for arm in settings.arms:
        kind = ARMS[arm].adapter
        config = settings.generate_config(arm)
        if kind is not None and config.adapter is None and config.model_name is None:  # endpoint: a served name
            raise ConfigError(f"arm {arm!r} needs an adapter: pass --adapter{' or --raft-adapter' if kind == 'raft' else ''}")
        generators[arm] = load_generator(config)
    return generators


def create_app(
    settings: ServeSettings,
    *,
    index: Any = None,
    generators: Mapping[str, Any] | None = None,
    keys: Any = None,
) -> FastAPI:
    """Build the FastAPI app: open the index, load the generators, wire auth, limits, metrics and routes.

    Injected `index`, `generators` (arm -> Generator) and `keys` (a KeyStore) replace what settings name.
    Raises ConfigError when no API key is configured and the host is not a loopback address.
    """
    from ragtune.serve import routes_documents, routes_openai, routes_search
    from ragtune.serve.auth import KeyStore, RateLimiter
    from ragtune.serve.deps import BODY_PROBLEMS, error_body, error_for, get_caller
    from ragtune.serve.metrics import server_metrics
    from ragtune.serve.service import ServeService

    keys = keys if keys is not None else KeyStore.load(settings.api_keys_file, settings.api_keys_env)
    if not keys.enabled and not is_loopback(settings.host):
        raise ConfigError(
            f"refusing to serve on {settings.host!r} without API keys: set ${settings.api_keys_env} or --api-keys FILE, "
            "or bind to 127.0.0.1"
        )
    from ragtune.arms import ARMS

    if index is None and settings.index is None and any(ARMS[arm].retrieval for arm in settings.arms):
        raise ConfigError(f"arms {list(settings.arms)} retrieve: give the index folder (--index DIR)")
    if index is None and settings.index is not None:
        from ragtune.index import Index

        index = Index.open(settings.index)
    if generators is None:
        generators = load_generators(settings)

    holder: dict[str, Any] = {}
    metrics = server_metrics(lambda: holder["service"].worker.depth() if "service" in holder else 0)
    service = ServeService(settings, index, generators, metrics)
    service.warm_up()
    holder["service"] = service

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any):
        service.worker.start()
        yield
        service.worker.stop()

    app = FastAPI(title="ragtune", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    app.state.keys = keys
    app.state.limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    app.state.auth_failures = RateLimiter(AUTH_FAILURES_PER_MINUTE, AUTH_FAILURES_PER_MINUTE)
    app.state.metrics = metrics
    app.state.started = int(time.time())
    app.add_middleware(LimitsAndMetrics, settings=settings, metrics=metrics)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = getattr(exc, "type", "invalid_request_error" if exc.status_code < 500 else "server_error")
        return JSONResponse(error_body(str(exc.detail), type_, getattr(exc, "code", None)), exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        own = [e for e in errors if e["type"] in BODY_PROBLEMS]  # raised by json_problem: the clearest line
        if own:
            return JSONResponse(error_body(own[0]["msg"], "invalid_request_error", own[0]["type"]), 400)
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse(error_body(f"invalid request: {problems}", "invalid_request_error"), 400)

    @app.exception_handler(RagtuneError)
    async def _ragtune_error(_request: Request, exc: RagtuneError) -> JSONResponse:
        error = error_for(exc)
        if error.status_code >= 500:
            log.warning("%s answered %d: %s", _request.url.path, error.status_code, exc)
        return JSONResponse(error_body(str(error.detail), error.type, error.code), error.status_code, headers=error.headers)

    @app.api_route("/healthz", methods=["GET", "HEAD"])  # load balancers probe with HEAD
    async def healthz() -> dict[str, Any]:
        """Liveness: no key needed, no data served."""
        return {"status": "ok", "arms": list(settings.arms), "queue_depth": service.worker.depth()}

    @app.get("/metrics")
    async def metrics_text(request: Request) -> PlainTextResponse:
        get_caller(request)
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.api_route("/", methods=["GET", "HEAD"])
    async def index_page() -> FileResponse:
        """The web UI (static; it holds no data — every API call it makes needs a key)."""
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.include_router(routes_openai.router)
    app.include_router(routes_search.router)
    app.include_router(routes_documents.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _version() -> str:
    try:
        from ragtune.version import __version__

        return __version__
    except ImportError:
        return "0"
