"""Generation: prompts with numbered sources, batched local/remote LLM backends, citations.

Light to import: backends load torch/transformers/httpx only when a generator is built.
"""

from ragtune.generate.base import Generator, Messages, generate_one
from ragtune.generate.hf import HFGenerator
from ragtune.generate.openai_compat import OpenAICompatGenerator
from ragtune.generate.registry import (
    backend_name,
    clear_generator_cache,
    load_generator,
    release_generators,
)
from ragtune.types import Generation

__all__ = [
    "Generation",
    "Generator",
    "HFGenerator",
    "Messages",
    "OpenAICompatGenerator",
    "backend_name",
    "clear_generator_cache",
    "generate_one",
    "load_generator",
    "release_generators",
]
