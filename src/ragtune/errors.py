"""One small error hierarchy. The CLI turns any RagtuneError into one clear line and a non-zero exit."""

from __future__ import annotations

import os
import stat


class RagtuneError(Exception):
    """Base class of every error ragtune raises on purpose."""

    exit_code = 1


class ConfigError(RagtuneError):
    """A setting, flag or model path is wrong."""

    exit_code = 2


class InputError(RagtuneError):
    """User-supplied data (documents, questions, training examples) is malformed."""

    exit_code = 2


class NotBuiltError(RagtuneError):
    """An artifact (index, adapter, run) is missing or incomplete."""

    exit_code = 3


class MissingExtraError(RagtuneError):
    """An optional dependency is not installed; the message names the extra."""

    exit_code = 4

    def __init__(self, module: str, extra: str):
        super().__init__(f"{module} is not installed: pip install 'ragtune[{extra}]'")


class BackendError(RagtuneError):
    """A model backend (e.g. a remote OpenAI-compatible endpoint) failed or answered malformed data."""

    exit_code = 5


class IndexBusyError(RagtuneError):
    """Another writer holds the index and did not release it in time; retry later (HTTP 503 + Retry-After)."""

    exit_code = 6

    def __init__(self, message: str, retry_after_s: float = 5.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class IndexCorruptError(NotBuiltError):
    """An index file is damaged; the message names the file (and line) and how to recover."""


def require_input_file(path: str | os.PathLike[str], what: str) -> None:
    """InputError naming `what` ('questions file', ...) unless path is a regular file: a folder, a FIFO or a device
    is said to be one (reading a FIFO would wait for a writer forever), a missing path is 'not found'.

    >>> require_input_file("/", "questions file")
    Traceback (most recent call last):
    ...
    ragtune.errors.InputError: questions file '/' is a directory, not a file
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{what} not found: {str(path)!r}") from None
    except OSError as exc:
        raise InputError(f"{what} {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{what} {str(path)!r} is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise InputError(f"{what} {str(path)!r} is not a regular file (a pipe or a device): give a file")
