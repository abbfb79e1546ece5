"""Small pieces shared by command modules: JSON output and the console."""

from __future__ import annotations

import json
import re
import sys
from typing import Any


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
