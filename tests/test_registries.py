"""Generator backends, graph extractors and embedders are chosen from registries that refuse duplicate names."""

from __future__ import annotations

import numpy as np
import pytest

from ragtune.config import GenerateConfig
from ragtune.errors import ConfigError
from ragtune.generate.registry import (
    BACKENDS,
    backend_name,
    clear_generator_cache,
    load_generator,
    register_backend,
    release_generators,
)
from ragtune.graph.llm_extract import EXTRACTORS, get_extractor, register_extractor
from ragtune.index.embed import EMBEDDERS, HashEmbedder, get_embedder, register_embedder
from ragtune.types import Generation


@pytest.fixture()
def scratch(monkeypatch):
    """Registrations and cached objects made by a test vanish after it."""
    for registry in (BACKENDS, EXTRACTORS, EMBEDDERS):
        monkeypatch.setattr(registry, "_factories", dict(registry._factories))
    monkeypatch.setattr("ragtune.index.embed._CACHE", {})
    clear_generator_cache()
    yield
    clear_generator_cache()


@pytest.mark.parametrize(
    ("register", "name"),
    [(register_backend, "openai"), (register_backend, "hf"), (register_extractor, "rules"),
     (register_extractor, "llm"), (register_embedder, "hash")],
)
def test_builtin_names_cannot_be_replaced(scratch, register, name):
    with pytest.raises(ConfigError, match=f"'{name}' is already registered"):
        register(name, lambda *args: None)


class _Echo:
    model_id = "echo"

    def generate(self, batch, max_new_tokens=64):
        return [Generation(text=f"echo {messages[-1]['content']}") for messages in batch]


def test_registered_backend_is_chosen_by_prefix(scratch):
    register_backend("echo", lambda config: _Echo())
    assert backend_name("echo:anything") == "echo" and backend_name("bundled") == "hf"
    assert backend_name("http://h:1") == "openai"
    generator = load_generator(GenerateConfig(model="echo:anything"))
    assert generator.generate([[{"role": "user", "content": "hi"}]])[0].text == "echo hi"
    with pytest.raises(ConfigError, match="already registered"):
        register_backend("echo", lambda config: _Echo())


def test_registered_extractor_gets_its_argument(scratch):
    register_extractor("fixed", lambda arg: (lambda texts: [[arg]] * len(texts)))
    assert get_extractor("fixed:zeta")(["a", "b"]) == [["zeta"], ["zeta"]]
    with pytest.raises(ConfigError, match="'nope'.*rules, llm, fixed"):
        get_extractor("nope")
    with pytest.raises(ConfigError, match="llm:"):
        get_extractor("llm:")


def test_registered_embedder_and_hash_dims(scratch):
    class _Ones:
        def encode(self, texts, batch_size=64, show_progress=False):
            return np.ones((len(texts), 4), dtype=np.float32)

    register_embedder("ones", lambda arg: _Ones())
    assert get_embedder("ones").encode(["x"]).shape == (1, 4)
    assert isinstance(get_embedder("hash:32"), HashEmbedder) and get_embedder("hash:32").encode(["x"]).shape == (1, 32)
    assert get_embedder("hash").encode(["x"]).shape == (1, 256)
    with pytest.raises(ConfigError, match="hash:DIM"):
        get_embedder("hash:big")


def test_release_generators_drops_all_but_the_kept_configs(scratch):
    register_backend("echo", lambda config: _Echo())
    one, two = GenerateConfig(model="echo:one"), GenerateConfig(model="echo:two")
    first, second = load_generator(one), load_generator(two)
    assert release_generators(keep=[one]) == 1
    assert load_generator(one) is first  # still cached
    assert load_generator(two) is not second  # dropped: built afresh
    assert release_generators() == 2 and release_generators() == 0


def test_uncached_load_builds_without_keeping_but_reuses_a_cached_one(scratch):
    register_backend("echo", lambda config: _Echo())
    config = GenerateConfig(model="echo:once")
    once = load_generator(config, cache=False)
    assert load_generator(config) is not once  # not kept: the cached load builds its own
    assert load_generator(config, cache=False) is load_generator(config)  # a cached one is reused


def test_the_cli_mode_help_names_every_built_in_retrieval_mode():
    from ragtune.cli.common import MODES_HELP, RERANK_DEPTH_HELP
    from ragtune.config import RetrieveConfig
    from ragtune.retrieve import MODES, RERANKED_MODES, retrieval_modes

    assert MODES_HELP.split(" (")[0] == " | ".join(MODES + RERANKED_MODES)
    depth = RetrieveConfig().rerank_depth  # the help texts name the default depth
    assert f"default {depth};" in RERANK_DEPTH_HELP and f"the mode's top {depth} reranked" in MODES_HELP
    assert set(MODES + RERANKED_MODES) <= set(retrieval_modes())  # each one registered (graph: by its provider)
