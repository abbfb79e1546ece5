"""Choosing a backend from GenerateConfig.model, and caching loaded generators per process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from ragtune.config import BUNDLED, GenerateConfig
from ragtune.errors import ConfigError
from ragtune.generate.base import Generator
from ragtune.registry import Registry

log = logging.getLogger(__name__)

_CACHE: dict[GenerateConfig, Generator] = {}
_LOCK = threading.Lock()


GeneratorFactory = Callable[[GenerateConfig], Generator]
BACKENDS: Registry[GeneratorFactory] = Registry("generator backend")


def register_backend(name: str, factory: GeneratorFactory) -> None:
    """Make `name` a generator backend, chosen by models spelt 'name:...' (GenerateConfig(model="name:x")).

    >>> register_backend("echo", lambda config: EchoGenerator(config.model))  # doctest: +SKIP
    """
    BACKENDS.register(name, factory)


def backend_name(model: str) -> str:
    """'openai' for http(s) URLs, a registered backend for 'name:...', else 'hf' (bundled or a local HF folder)."""
    if model.startswith(("http://", "https://")):
        return "openai"
    scheme = model.split(":", 1)[0] if ":" in model else ""
    return scheme if len(scheme) > 1 and scheme in BACKENDS else "hf"


def load_generator(config: GenerateConfig | None = None, *, cache: bool = True) -> Generator:
    """The generator for config.model — 'bundled' | a local HF folder | an http(s):// endpoint.

    config.adapter (a peft adapter folder) is applied on top of a local model. Generators are cached per
    process by config, so `ask`, `compare` and `serve` share one loaded model. How prompts are built for it
    (config.prompt_style, config.context_sentences) is `ragtune.pipeline.AnswerSettings.resolve(config)`.

    cache=False is for one-off use (synthesis before training loads its own copy of the model): a cached
    generator is still returned, but one built here is not kept, so it is freed with the caller's last reference.

    >>> gen = load_generator(GenerateConfig(model="bundled"))   # doctest: +SKIP
    >>> gen.generate([[{"role": "user", "content": "Hi"}]], max_new_tokens=8)[0].text  # doctest: +SKIP
    """
    config = config or GenerateConfig()
    with _LOCK:
        cached = _CACHE.get(config)
        if cached is not None:
            return cached
        generator = _build(config)
        if cache:
            _CACHE[config] = generator
        return generator


def clear_generator_cache() -> None:
    """Forget cached generators (tests, or to free memory)."""
    with _LOCK:
        _CACHE.clear()


def release_generators(keep: Iterable[GenerateConfig] = ()) -> int:
    """Drop every cached generator whose config is not in `keep`, so its model can be freed once the caller
    holds no reference (compare: an arm's model once no later arm uses it). Returns how many were dropped."""
    kept = set(keep)
    with _LOCK:
        dropped = [config for config in _CACHE if config not in kept]
        for config in dropped:
            del _CACHE[config]
    return len(dropped)


def _build(config: GenerateConfig) -> Generator:
    return BACKENDS.get(backend_name(config.model))(config)


def _openai(config: GenerateConfig) -> Generator:
    if config.adapter:
        raise ConfigError(f"an adapter ({config.adapter!r}) can only be applied to a local model, not {config.model!r}")
    from ragtune.generate.openai_compat import OpenAICompatGenerator

    return OpenAICompatGenerator(
        config.model,
        model_name=config.model_name,
        api_key_env=config.api_key_env,
        temperature=config.temperature,
        timeout_s=config.timeout_s,
        max_attempts=config.max_attempts,
    )


def _hf(config: GenerateConfig) -> Generator:
    from ragtune.generate.hf import HFGenerator
    from ragtune.models import BUNDLED_LLM_ID, resolve_llm

    model_dir = resolve_llm(config.model)
    adapter = None
    if config.adapter is not None:
        adapter = Path(config.adapter).expanduser()
        if not adapter.is_dir():
            raise ConfigError(f"adapter folder not found: {config.adapter!r}")
    return HFGenerator(
        model_dir,
        adapter=adapter,
        batch_size=config.batch_size,
        temperature=config.temperature,
        num_threads=config.num_threads,
        stop_at_answer_line=config.stop_at_answer_line,
        model_id=BUNDLED_LLM_ID if config.model == BUNDLED else None,
    )


register_backend("openai", _openai)
register_backend("hf", _hf)
