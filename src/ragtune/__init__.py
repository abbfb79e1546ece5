"""ragtune: RAG, fine-tuning, or both? Measure it on your own documents.

Importing the package is cheap: no torch, no models, no side effects.
"""

__version__ = "0.1.0"

import warnings  # noqa: E402

# peft (0.17) asks transformers (5.x) a deprecated question on every LoRA load; nothing a user can act on.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

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
