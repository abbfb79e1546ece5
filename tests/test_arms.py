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


def test_tuned_retriever_arms_are_data_of_the_arm_table():
    assert parse_arms("rag_tr,raft_tr,rag") == ["rag_tr", "raft_tr", "rag"]
    assert not set(DEFAULT_ARMS) & {"rag_tr", "raft_tr"}  # asked for by name: they need a tuned embedder
    tuned_retriever = {name: (spec.retrieval, spec.adapter) for name, spec in ARMS.items() if spec.tuned_retriever}
    assert tuned_retriever == {"rag_tr": (True, None), "raft_tr": (True, "raft")}  # as rag / raft, retuned index
    assert [name for name, spec in ARMS.items() if spec.tuned] == ["ft", "ft_rag", "raft", "rag_tr", "raft_tr"]


def test_commands_with_one_given_index_refuse_tuned_retriever_arms():
    from ragtune.arms import check_untuned_retriever
    from ragtune.errors import ConfigError

    check_untuned_retriever("raft", "serve")
    with pytest.raises(ConfigError, match="arm 'raft_tr' is arm 'raft' over a re-embedded index: `ragtune reindex"):
        check_untuned_retriever("raft_tr", "serve")
    with pytest.raises(ConfigError, match="then tune rag with --index INDEX_TR"):
        check_untuned_retriever("rag_tr", "tune")


def test_serve_and_compare_do_not_need_evaluate_for_arms():
    import subprocess
    import sys

    code = "import sys, ragtune.serve.app, ragtune.serve.service; print('ragtune.evaluate' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
