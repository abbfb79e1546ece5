"""The arms of a comparison (ragtune.arms), shared by compare and serve."""

from __future__ import annotations

import pytest

from ragtune.arms import ARMS, DEFAULT_ARMS, parse_arms
from ragtune.errors import InputError


def test_parse_arms_validates_and_deduplicates_in_order():
    assert parse_arms("rag, base,rag") == ["rag", "base"]
    assert parse_arms(["ft_rag", "raft"]) == ["ft_rag", "raft"]
    with pytest.raises(InputError, match="unknown arm 'rgx'"):
        parse_arms("base,rgx")
    with pytest.raises(InputError, match="no arms"):
        parse_arms(" , ")


def test_arm_table():
    assert DEFAULT_ARMS == ("base", "rag", "ft", "ft_rag", "raft")
    assert [a for a in DEFAULT_ARMS if ARMS[a].retrieval] == ["rag", "ft_rag", "raft"]
    assert {a: ARMS[a].adapter for a in DEFAULT_ARMS} == {"base": None, "rag": None, "ft": "sft", "ft_rag": "sft",
                                                          "raft": "raft"}


def test_serve_and_compare_do_not_need_evaluate_for_arms():
    import subprocess
    import sys

    code = "import sys, ragtune.serve.app, ragtune.serve.service; print('ragtune.evaluate' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
