"""The layers of ragtune: imports only go down (or sideways inside one layer).

Every module under src/ragtune is parsed with `ast`; every import counts, at module level and inside functions
alike (a lazy import is still a dependency), and so does `importlib.import_module("ragtune....")` with a literal
(or f-string) name. Top to bottom:

    cli, serve  >  workflows, distributed  >  report  >  evaluate  >  pipeline  >  train, graph  >  retrieve, generate
    >  index, store  >  ingest  >  base (text, types, config, errors, atomic, paths, progress, models, arms, ...)

`cli` may import `serve` (the serve command); `serve` never imports `cli`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ragtune

PACKAGE_DIR = Path(ragtune.__file__).resolve().parent

# Rank of each top-level name under ragtune (a package or a root module); higher may import lower.
LAYERS: dict[str, int] = {
    "cli": 10,
    "serve": 10,
    "workflows": 9,
    "distributed": 9,  # Ray executors for ingest and compare (extra ragtune[ray]); beside workflows
    "report": 8,
    "evaluate": 7,
    "pipeline": 6,
    "train": 5,
    "graph": 5,
    "retrieve": 4,
    "generate": 4,
    "index": 3,
    "store": 3,
    "ingest": 2,
    # base: small modules every layer may use
    "text": 1,
    "types": 1,
    "access": 1,
    "version": 1,
    "uris": 1,
    "config": 1,
    "errors": 1,
    "atomic": 1,
    "fresh_process": 1,  # one call in a spawned child (model conversion, ONNX export)
    "paths": 1,
    "progress": 1,
    "models": 1,  # resolving the bundled/offline models
    "arms": 1,  # the arm names (rag, ft, raft, ...) and their parsing
    "adapters": 1,  # the adapter manifest checks
    "runs_db": 1,  # the SQLite catalogue of compare runs
    "registry": 1,  # the small name -> factory Registry (retrieval modes, generators, extractors, embedders)
    "sample": 1,  # the bundled sample corpus (data files and a reader)
}
# Imports that may not run sideways inside one layer: (importer, imported).
FORBIDDEN_SIDEWAYS = {("serve", "cli")}
# The package root `ragtune/__init__.py` is the public face: it may hand on names from any layer (lazily).
FACADE = "ragtune"

# Known violations that cannot move yet: (importing module, imported module) -> why. Keep it small; empty is the goal.
ALLOWED: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _import_module_target(call: ast.Call) -> str | None:
    """The literal `ragtune...` name of an `importlib.import_module(...)` call (an f-string counts up to its first
    placeholder)."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name not in {"import_module", "__import__"} or not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        text = arg.value
    elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        text = str(arg.values[0].value)
    else:
        return None
    text = text.rstrip(".")
    return text if text == "ragtune" or text.startswith("ragtune.") else None


def imports_of(source: str, importer: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, imported ragtune module) for every import in the source of module `importer`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = _resolve_relative(importer, is_package, node.level, node.module)
            if module == "ragtune":  # `from ragtune import x`: x names a module or a package-level name
                found += [(node.lineno, f"ragtune.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, module))
        elif isinstance(node, ast.Call) and (target := _import_module_target(node)):
            found.append((node.lineno, target))
    return [(line, name) for line, name in found if name == "ragtune" or name.startswith("ragtune.")]


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else FACADE


def violations() -> list[str]:
    problems = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        importer = _module_name(path)
        source = _top(importer)
        where = path.relative_to(PACKAGE_DIR.parent.parent) if PACKAGE_DIR.parent.name == "src" else path
        if source == FACADE:
            continue
        if source not in LAYERS:
            problems.append(f"{where}: module '{importer}' has no layer; place it in LAYERS (tests/test_layers.py)")
            continue
        for line, target in sorted(imports_of(path.read_text(encoding="utf-8"), importer, path.name == "__init__.py")):
            dest = _top(target)
            if dest == FACADE or dest == source:
                continue
            if dest not in LAYERS:
                problems.append(f"{where}:{line}: imports '{target}', which has no layer")
            elif (importer, target) in ALLOWED:
                continue
            elif LAYERS[dest] > LAYERS[source] or (source, dest) in FORBIDDEN_SIDEWAYS:
                problems.append(
                    f"{where}:{line}: {source} (layer {LAYERS[source]}) imports {target} (layer {LAYERS[dest]})"
                )
    return problems


def test_imports_only_go_down_the_layers():
    problems = violations()
    assert not problems, "imports that run up the layers:\n" + "\n".join(problems)


def test_every_allowed_exception_is_still_needed():
    found = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        importer = _module_name(path)
        found |= {(importer, target) for _, target in imports_of(path.read_text(encoding="utf-8"), importer,
                                                                  path.name == "__init__.py")}
    assert set(ALLOWED) <= found, f"stale ALLOWED entries: {set(ALLOWED) - found}"


def test_the_checker_sees_function_level_relative_and_dynamic_imports():
    source = (
        "import importlib\n"
        "from ragtune.errors import InputError\n"
        "def f(name):\n"
        "    from ragtune.evaluate import scoring\n"
        "    importlib.import_module('ragtune.graph.store')\n"
        "    importlib.import_module(f'ragtune.cli.{name}')\n"
        "    from ..retrieve import dense\n"
        "    from . import bm25\n"
        "    from ragtune import __version__\n"
    )
    assert imports_of(source, "ragtune.index.probe") == [
        (2, "ragtune.errors"),
        (4, "ragtune.evaluate"),
        (7, "ragtune.retrieve"),
        (8, "ragtune.index"),
        (9, "ragtune.__version__"),
        (5, "ragtune.graph.store"),
        (6, "ragtune.cli"),
    ]
