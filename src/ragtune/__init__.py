"""ragtune: RAG, fine-tuning, or both? Measure it on your own documents.

The public Python API, in the order a script uses it:

- `load_documents(paths)`: read files and folders into Documents (`.documents`, `.skipped`);
- `Index`: the index folder (`Index.create(folder)`, `.add_documents(docs)`);
- `open_retriever(index, mode)`: a retriever over an index (dense | bm25 | hybrid | hybrid-convex | graph-*; the
  first four also with "+rerank": reordered by the LLM);
- `answer(questions, generator, retriever)`: the answer path `ask`, `compare` and `serve` share;
- `compare(config)`: run every arm on the same questions and write a run folder (report.html, results.json);
- `create_app(settings)`: the OpenAI-compatible FastAPI app of `ragtune serve` (needs `ragtune[serve]`).

>>> from ragtune import Index, answer, load_documents, open_retriever             # doctest: +SKIP
>>> from ragtune.generate import load_generator                   # doctest: +SKIP
>>> index = Index.create("my-index")                               # doctest: +SKIP
>>> index.add_documents(load_documents(["docs/"]).documents)       # doctest: +SKIP
>>> answer(["How many leave days?"], load_generator(), open_retriever(index, "hybrid"))[0].answer  # doctest: +SKIP
'thirty days'

Importing the package is cheap and changes nothing: no torch, no models, no warnings filters, no environment
changes. The names above are imported on first use (PEP 562).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ragtune.errors import ConfigError, InputError, NotBuiltError, RagtuneError
from ragtune.types import Chunk, Document, Example, Hit, Prediction

from ragtune.version import __version__

# public name -> (module, attribute); imported on first access so `import ragtune` stays light
_LAZY = {
    "Index": ("ragtune.index.store", "Index"),
    "load_documents": ("ragtune.ingest.loaders", "load_documents"),
    "answer": ("ragtune.pipeline", "answer"),
    "compare": ("ragtune.workflows.compare", "run_compare"),
    "open_retriever": ("ragtune.retrieve.factory", "open_retriever"),
    "create_app": ("ragtune.serve.app", "create_app"),
}

if TYPE_CHECKING:  # for type checkers and IDEs only
    from ragtune.retrieve.factory import open_retriever
    from ragtune.workflows.compare import run_compare as compare
    from ragtune.index.store import Index
    from ragtune.ingest.loaders import load_documents
    from ragtune.pipeline import answer
    from ragtune.serve.app import create_app


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'ragtune' has no attribute {name!r}") from None
    try:
        value = getattr(import_module(module), attribute)
    except ModuleNotFoundError as exc:
        if name == "create_app" and exc.name in ("fastapi", "starlette", "uvicorn", "prometheus_client"):
            from ragtune.errors import MissingExtraError

            raise MissingExtraError(exc.name, "serve") from exc
        raise
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Chunk",
    "ConfigError",
    "Document",
    "Example",
    "Hit",
    "Index",
    "InputError",
    "NotBuiltError",
    "Prediction",
    "RagtuneError",
    "__version__",
    "answer",
    "compare",
    "create_app",
    "load_documents",
    "open_retriever",
]
