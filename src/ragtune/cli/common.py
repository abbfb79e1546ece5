"""Small pieces shared by command modules: JSON output and the console."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(obj: Any) -> None:
    """Write obj as pretty JSON to stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def console():
    from rich.console import Console

    return Console()
