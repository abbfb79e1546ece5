"""Named registries: retrieval modes, generator backends, graph extractors and embedders are chosen by name.

Each is a small dict behind `register(name, factory)`, which rejects a name already taken, so an extension adds
a name without editing a chain of ifs (and cannot silently replace a built-in).

A name can also be *provided* by a higher layer: `providers` maps it to "module:factory", declared in the tables
below (a fixed, internal table, never user input); the first `get` of the name imports that module and registers
its factory. So the graph package adds the graph-* retrieval modes to ragtune.retrieve without ragtune.retrieve
importing it, and `open_retriever(index, "graph-hybrid")` works from any caller without importing ragtune.graph
first.

>>> shapes = Registry("shape")
>>> shapes.register("square", lambda side: side * side)
>>> shapes.get("square")(3)
9
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from ragtune.errors import ConfigError

F = TypeVar("F", bound=Callable)

# Retrieval modes provided by a package above ragtune.retrieve: name -> "module:factory" (registered on first use).
RETRIEVAL_MODE_PROVIDERS: Mapping[str, str] = {
    "graph-local": "ragtune.graph.retrieve:open_graph_retriever",
    "graph-global": "ragtune.graph.retrieve:open_graph_retriever",
    "graph-hybrid": "ragtune.graph.retrieve:open_graph_retriever",
}

# Index backends by URI scheme, provided by ragtune.store (a layer above ragtune.index, which dispatches to them).
INDEX_BACKEND_PROVIDERS: Mapping[str, str] = {
    scheme: "ragtune.store.index:open_store_index"
    for scheme in ("milvus", "milvus+http", "milvus+https", "postgresql", "postgres")
}


class Registry(Generic[F]):
    """Factories by name; `kind` names what they build in error messages ("retrieval mode", "extractor"...).

    `providers` maps names to the "module:factory" that provides them (imported and registered on the first
    `get`)."""

    def __init__(self, kind: str, providers: Mapping[str, str] | None = None):
        self.kind = kind
        self._factories: dict[str, F] = {}
        self._providers: dict[str, str] = dict(providers or {})

    def register(self, name: str, factory: F) -> None:
        """Add `name`; ConfigError when it is empty or already registered."""
        if not name or not isinstance(name, str):
            raise ConfigError(f"a {self.kind} needs a non-empty name, got {name!r}")
        if name in self._factories:
            raise ConfigError(f"{self.kind} {name!r} is already registered")
        self._factories[name] = factory

    def get(self, name: str) -> F:
        """The factory for `name` (importing its provider module first if need be); ConfigError naming the choices
        otherwise."""
        if name not in self._factories and name in self._providers:
            module, _, attribute = self._providers[name].partition(":")
            self.register(name, getattr(importlib.import_module(module), attribute))
        try:
            return self._factories[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}: choose one of {', '.join(self.names())}") from None

    def names(self) -> tuple[str, ...]:
        """Registered names in registration order, then the provided names in their table's order (whether or
        not their module is imported yet, so the order never depends on what was used first)."""
        return tuple(n for n in self._factories if n not in self._providers) + tuple(self._providers)

    def __contains__(self, name: object) -> bool:
        return name in self._factories or name in self._providers
