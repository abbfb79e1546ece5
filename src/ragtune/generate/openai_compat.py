"""Remote backend: any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, OpenAI) via /v1/chat/completions.

The URL may be the server root (`http://host:8000`) or already end in `/v1`; the model name comes from
GenerateConfig.model_name (`--model-name`, or a tuned arm's `--adapter-model-name`, e.g. a vLLM LoRA module), else
from the URL fragment (`http://host:8000/v1#qwen2.5-7b`), else "default".
Conversations in a batch are sent as concurrent requests (the chat API takes one conversation per request).
A 408/429/5xx answer or a connection failure is retried with exponential backoff and jitter, honouring the
server's Retry-After, up to `max_attempts` tries; one busy moment of the server does not fail a compare run.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ragtune.errors import BackendError, ConfigError
from ragtune.generate.base import Messages
from ragtune.types import Generation

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_WAIT_S = 60.0  # a Retry-After longer than this is cut to it, so a run never stalls for an hour


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable.

    >>> retry_after_seconds("3")
    3.0
    >>> retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0)
    10.0
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def backoff_delay(attempt: int, base_s: float, cap_s: float, retry_after: float | None, rng: random.Random) -> float:
    """Wait before retry number `attempt` (1-based): the server's Retry-After when given, else exponential
    backoff base*2^(attempt-1) with "equal jitter" (half fixed, half random), both cut to cap_s."""
    if retry_after is not None:
        return min(retry_after, cap_s)
    ceiling = min(cap_s, base_s * 2 ** (attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def split_endpoint(url: str) -> tuple[str, str | None]:
    """(chat-completions URL, model name from the #fragment or None).

    >>> split_endpoint("http://localhost:8000#my-model")
    ('http://localhost:8000/v1/chat/completions', 'my-model')
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"not an http(s) endpoint URL: {url!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/chat/completions"):
        pass
    elif path.endswith("/v1"):
        path += "/chat/completions"
    else:
        path += "/v1/chat/completions"
    endpoint = urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
    return endpoint, (parts.fragment or None)


class OpenAICompatGenerator:
    """Chat completions from an OpenAI-compatible HTTP endpoint."""

    def __init__(
        self,
        url: str,
        *,
        model_name: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        temperature: float = 0.0,
        timeout_s: float = 120.0,
        concurrency: int = 4,
        max_attempts: int = 4,
        backoff_s: float = 0.5,
        transport: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """`max_attempts` tries per request (1 = no retry), the first retry after ~`backoff_s` seconds, doubling.
        `transport` (an httpx transport, e.g. httpx.MockTransport) and `sleep` are seams for tests."""
        import httpx

        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {max_attempts}")

        self.endpoint, fragment_name = split_endpoint(url)
        self.remote_model = model_name or fragment_name or "default"
        self.model_id = self.remote_model
        self.temperature = temperature
        self.concurrency = max(1, concurrency)
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._rng = random.Random()
        headers = {"Content-Type": "application/json"}
        api_key = os.environ.get(api_key_env, "")
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(timeout=timeout_s, headers=headers, transport=transport)

    def generate(self, batch: list[Messages], max_new_tokens: int = 64) -> list[Generation]:
        """One Generation per conversation, same order (requests run concurrently)."""
        if not batch:
            return []
        if len(batch) == 1 or self.concurrency == 1:
            return [self._complete(messages, max_new_tokens) for messages in batch]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(batch))) as pool:
            return list(pool.map(lambda m: self._complete(m, max_new_tokens), batch))

    def _complete(self, messages: Messages, max_new_tokens: int) -> Generation:

        payload: dict[str, Any] = {
            "model": self.remote_model,
            "messages": messages,
            "max_tokens": max_new_tokens,
            "temperature": self.temperature,
        }
        response = self._post_with_retries(payload)
        try:
            data = response.json()
            text = data["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise BackendError(f"{self.endpoint} returned no chat completion: {response.text[:300]!r}") from exc
        usage = data.get("usage") or {}
        return Generation(
            text=text.strip(),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )

    def _post_with_retries(self, payload: dict[str, Any]) -> Any:
        """The first non-retryable answer; BackendError when every attempt failed or the answer is an error."""
        import httpx

        for attempt in range(1, self.max_attempts + 1):
            retry_after = None
            try:
                response = self._client.post(self.endpoint, json=payload)
            except httpx.TransportError as exc:  # connection refused/reset, timeouts
                failure = f"request to {self.endpoint} failed: {exc}"
            except httpx.HTTPError as exc:  # not worth retrying (e.g. too many redirects)
                raise BackendError(f"request to {self.endpoint} failed: {exc}") from exc
            else:
                if response.status_code < 400:
                    return response
                failure = f"{self.endpoint} answered HTTP {response.status_code}: {response.text[:300]!r}"
                if response.status_code not in RETRY_STATUSES:
                    raise BackendError(failure)
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt == self.max_attempts:
                break
            delay = backoff_delay(attempt, self.backoff_s, MAX_RETRY_WAIT_S, retry_after, self._rng)
            log.warning("%s; retry %d/%d in %.2f s", failure, attempt, self.max_attempts - 1, delay)
            self._sleep(delay)
        raise BackendError(f"{failure} (gave up after {self.max_attempts} attempts)")

    def close(self) -> None:
        self._client.close()
