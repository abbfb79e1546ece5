"""Run one call in a fresh interpreter and return its result, for work whose peak memory must not stay behind.

A process's freed heap is not all handed back to the OS (fragmentation, imported modules, allocator arenas), so a
one-off heavy step (converting the bundled GGUF, exporting an encoder to ONNX) would keep inflating the RSS of the
process that ingests, trains and answers next. In a child that exits, all of it goes back.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def call_in_fresh_process(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a spawned child process (never forked: the parent may hold torch's threads); its
    exception is raised here. `function` and `args` must pickle (a function of an importable module, plain values).

    The child does not import the caller's `__main__`: a spawned child normally runs the main script again, which,
    in a user's script without an `if __name__ == "__main__":` guard, repeats everything the script did before
    this call (its training, say) and then fails when the repeat spawns again."""
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        with _main_hidden():  # the child starts (and reads how to import __main__) during submit
            future = pool.submit(function, *args)
        return future.result()


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """multiprocessing's spawn imports the parent's __main__ by its __spec__ name or __file__; without either (as
    in an interactive session) it imports nothing."""
    main = sys.modules.get("__main__")
    saved = {name: getattr(main, name) for name in ("__spec__", "__file__") if hasattr(main, name)}
    try:
        if main is not None:
            main.__spec__ = None
            if "__file__" in saved:
                del main.__file__
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)
