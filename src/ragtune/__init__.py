"""ragtune: RAG, fine-tuning, or both? Measure it on your own documents.

Importing the package is cheap: no torch, no models, no side effects.
"""

__version__ = "0.1.0"

from ragtune.errors import ConfigError, InputError, NotBuiltError, RagtuneError  # noqa: E402
from ragtune.types import Chunk, Document, Example, Hit, Prediction  # noqa: E402

__all__ = [
    "Chunk",
    "ConfigError",
    "Document",
    "Example",
    "Hit",
    "InputError",
    "NotBuiltError",
    "Prediction",
    "RagtuneError",
    "__version__",
]
