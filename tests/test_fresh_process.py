"""call_in_fresh_process: the child runs the function only, never the caller's unguarded main script again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """\
import os, sys
with open(sys.argv[1], "a") as fh:
    fh.write("ran\\n")
from ragtune.fresh_process import call_in_fresh_process
child = call_in_fresh_process(os.getpid)
print(child != os.getpid(), hasattr(sys.modules["__main__"], "__file__"))
"""


def test_a_script_without_a_main_guard_runs_once(tmp_path: Path) -> None:
    script, marks = tmp_path / "unguarded.py", tmp_path / "marks.txt"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, str(script), str(marks)], capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]  # another process; __main__ is whole again afterwards
    assert marks.read_text() == "ran\n"  # the spawned child did not run the script a second time


def test_the_result_and_the_exception_come_back_and_main_is_restored() -> None:
    from ragtune.fresh_process import call_in_fresh_process

    main = sys.modules["__main__"]
    before = {name: getattr(main, name, "absent") for name in ("__spec__", "__file__")}
    assert call_in_fresh_process(os.path.join, "a", "b") == os.path.join("a", "b")
    with pytest.raises(TypeError):
        call_in_fresh_process(os.path.join, 1)
    assert {name: getattr(main, name, "absent") for name in ("__spec__", "__file__")} == before
