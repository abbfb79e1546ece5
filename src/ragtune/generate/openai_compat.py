"""Remote backend: any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, OpenAI) via /v1/chat/completions.

The URL may be the server root (`http://host:8000`) or already end in `/v1`; the model name comes from the
URL fragment (`http://host:8000/v1#qwen2.5-7b`), else from GenerateConfig.model_name, else "default".
Conversations in a batch are sent as concurrent requests (the chat API takes one conversation per request).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ragtune.errors import BackendError, ConfigError
from ragtune.generate.base import Messages
from ragtune.types import Generation

log = logging.getLogger(__name__)


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
    ):
        import httpx

        self.endpoint, fragment_name = split_endpoint(url)
        self.remote_model = fragment_name or model_name or "default"
        self.model_id = self.remote_model
        self.temperature = temperature
        self.concurrency = max(1, concurrency)
        headers = {"Content-Type": "application/json"}
        api_key = os.environ.get(api_key_env, "")
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(timeout=timeout_s, headers=headers)

    def generate(self, batch: list[Messages], max_new_tokens: int = 64) -> list[Generation]:
        """One Generation per conversation, same order (requests run concurrently)."""
        if not batch:
            return []
        if len(batch) == 1 or self.concurrency == 1:
            return [self._complete(messages, max_new_tokens) for messages in batch]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(batch))) as pool:
            return list(pool.map(lambda m: self._complete(m, max_new_tokens), batch))

    def _complete(self, messages: Messages, max_new_tokens: int) -> Generation:
        import httpx

        payload: dict[str, Any] = {
            "model": self.remote_model,
            "messages": messages,
            "max_tokens": max_new_tokens,
            "temperature": self.temperature,
        }
        try:
            response = self._client.post(self.endpoint, json=payload)
        except httpx.HTTPError as exc:
            raise BackendError(f"request to {self.endpoint} failed: {exc}") from exc
        if response.status_code >= 400:
            raise BackendError(f"{self.endpoint} answered HTTP {response.status_code}: {response.text[:300]!r}")
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

    def close(self) -> None:
        self._client.close()
