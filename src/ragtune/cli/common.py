"""Small pieces shared by command modules: JSON output and the console."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any


# --mode's help: the built-in retrieval modes (ragtune.retrieve.MODES and RERANKED_MODES, which this light module
# must not import; a test keeps them equal)
ANSWER_PICK_HELP = ("joint | evidence: evidence also answers from each passage alone (k + 1 generations) and keeps "
                    "the answer whose backing sentence is closest to the question (SQuAD, bundled model: F1 +0.057 "
                    "on the bench's articles, +0.005 on others; compare --search tries it per corpus)")
ANSWER_FORM_HELP = ("free | snap | span | free-or-span: snap replaces the answer by the closest span of the passages "
                    "shown; span decodes it as one (a local model is held to the passages as it decodes; an endpoint's "
                    "reply is snapped); free-or-span keeps an answer a passage holds and decodes any other again as a "
                    "span. Spans cite the passage they came from.")
SCREENING_HELP = ("Prompt-injection screening of the retrieved passages: neutralise (an offending sentence is replaced "
                  "by a marker) | drop (the passage is left out) | off. ask, compare and serve screen alike.")
RERANK_DEPTH_HELP = "With a +rerank --mode: how many of the mode's hits the LLM reranks (default 10; fewer is faster)."
RERANK_WEIGHT_HELP = ("With a +rerank --mode: the weight of the LLM's score against the mode's own, 0 to 1 "
                      "(default 0.7).")
MODES_HELP = ("dense | bm25 | hybrid | hybrid-convex | graph-local | graph-global | graph-hybrid | dense+rerank | "
              "bm25+rerank | hybrid+rerank | hybrid-convex+rerank (+rerank: the mode's top 10 reranked by the LLM's "
              "likelihood of the query; seconds a query on a CPU)")


def rerank_options(mode: str, depth: int | None, weight: float | None) -> dict[str, Any]:
    """--rerank-depth / --rerank-weight as RetrieveConfig fields ({} when neither is given); InputError when given
    with a --mode that does not rerank, where they would do nothing."""
    from ragtune.config import RERANK_SUFFIX, RerankOptions
    from ragtune.errors import InputError

    options = RerankOptions(rerank_depth=depth, rerank_weight=weight)
    unused = ["--" + name.replace("_", "-") for name in options.unused_with(mode)]
    if unused:
        verb = "applies" if len(unused) == 1 else "apply"
        raise InputError(f"{' and '.join(unused)} {verb} to a {RERANK_SUFFIX} mode only (got --mode {one_line(mode)}; "
                         f"e.g. --mode hybrid-convex{RERANK_SUFFIX})")
    return options.retrieve_options()


def print_json(obj: Any) -> None:
    """Write obj as pretty JSON to stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def console():
    from rich.console import Console

    return Console()


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """`text` with control characters escaped (`\\n`, `\\x1b`): a file name or value can never split a report line."""
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return _CONTROL.sub(lambda m: named.get(m[0], f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else f"\\u{ord(m[0]):04x}"), text)


def check_output_folder(path: Path, flag: str, *, kind: str = "folder") -> None:
    """Fail before any work when `path` cannot become a `kind` ("folder" or "file"): it exists as the other
    kind, a parent is a file, or the nearest existing parent is not writable."""
    from ragtune.errors import InputError

    path = Path(path).absolute()
    if path.exists() and path.is_dir() != (kind == "folder"):
        raise InputError(f"{flag} {path}: exists and is not a {kind}")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{flag} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path}: cannot write in {parent} (permission denied)")


def check_adapter_folder(path: Path | None, flag: str) -> None:
    """An existing folder given as an adapter must hold one (adapter_config.json), else a clear error up front.

    A missing folder is left to the adapter loader, which also points at an unfinished `.partial` run.
    """
    from ragtune.errors import ConfigError

    if path is None or not Path(path).exists():
        return
    if not Path(path).is_dir():
        raise ConfigError(f"{flag} {path}: is a file, not an adapter folder (written by `ragtune finetune`)")
    if not (Path(path) / "adapter_config.json").is_file():
        raise ConfigError(f"{flag} {path}: not a LoRA adapter folder (no adapter_config.json); "
                          "pass a folder written by `ragtune finetune`")


def check_text(value: str | None, what: str) -> None:
    """InputError when text from the command line is not valid UTF-8 (undecodable bytes arrive as surrogates)."""
    from ragtune.errors import InputError

    if value and _SURROGATE.search(value):
        raise InputError(f"{what} is not valid UTF-8 text: {one_line(ascii(value))}")


_SURROGATE = re.compile(r"[\ud800-\udfff]")


CHUNK_FLAGS = {"chunk_tokens": "--chunk-tokens", "overlap_tokens": "--overlap"}  # ChunkConfig fields -> their flags
# GenerateConfig fields that ask, compare and serve set with one flag each: a bad value's error names the flag
ANSWER_FLAGS = {"prompt_style": "--prompt-style", "context_sentences": "--context-sentences",
                "answer_form": "--answer-form", "answer_pick": "--answer-pick", "screening": "--screening",
                "max_new_tokens": "--max-new-tokens"}
