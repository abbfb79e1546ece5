"""Named registries: retrieval modes, generator backends, graph extractors and embedders are chosen by name.

Each is a small dict behind `register(name, factory)`, which rejects a name already taken, so an extension adds
a name without editing a chain of ifs (and cannot silently replace a built-in).

>>> shapes = Registry("shape")
>>> shapes.register("square", lambda side: side * side)
>>> shapes.get("square")(3)
9
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from ragtune.errors import ConfigError

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    """Factories by name; `kind` names what they build in error messages ("retrieval mode", "extractor"...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, F] = {}

    def register(self, name: str, factory: F) -> None:
        """Add `name`; ConfigError when it is empty or already registered."""
        if not name or not isinstance(name, str):
            raise ConfigError(f"a {self.kind} needs a non-empty name, got {name!r}")
        if name in self._factories:
            raise ConfigError(f"{self.kind} {name!r} is already registered")
        self._factories[name] = factory

    def get(self, name: str) -> F:
        """The factory for `name`; ConfigError naming the choices otherwise."""
        try:
            return self._factories[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}: choose one of {', '.join(self.names())}") from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories
