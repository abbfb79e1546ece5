"""Run one call in a fresh interpreter and return its result, for work whose peak memory must not stay behind.

A process's freed heap is not all handed back to the OS (fragmentation, imported modules, allocator arenas), so a
one-off heavy step (converting the bundled GGUF, exporting an encoder to ONNX) would keep inflating the RSS of the
process that ingests, trains and answers next. In a child that exits, all of it goes back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def call_in_fresh_process(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a spawned child process (never forked: the parent may hold torch's threads); its
    exception is raised here. `function` and `args` must pickle (a module-level function, plain values)."""
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()
