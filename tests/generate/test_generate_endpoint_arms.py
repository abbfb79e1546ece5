"""Tuned arms on an OpenAI-compatible endpoint (vLLM LoRA modules): each arm asks the server for its own model
name (`--model-name`, `--adapter-model-name KIND=NAME`), in compare and serve, against a fake server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.arms import endpoint_model_name, parse_adapter_model_names
from ragtune.config import EmbedConfig, IndexConfig
from ragtune.errors import ConfigError
from ragtune.generate import clear_generator_cache
from ragtune.index import Index
from ragtune.types import Document
from ragtune.workflows.compare import CompareConfig, run_compare


class _ModelsSeen:
    """The fake endpoint's record of the model names it was asked for."""

    seen: list[str] = []


def _answer_with_model(path: str, headers: dict, body: dict) -> tuple[int, dict]:
    """Answers every chat completion with the model it was asked for, and records that name."""
    _ModelsSeen.seen.append(body["model"])
    return 200, {"choices": [{"message": {"role": "assistant", "content": f"Answer: {body['model']}"}}],
                 "usage": {"prompt_tokens": 5, "completion_tokens": 2}}


@pytest.fixture()
def endpoint(json_endpoint):
    _ModelsSeen.seen = []
    clear_generator_cache()
    yield json_endpoint(_answer_with_model) + "/v1"
    clear_generator_cache()


@pytest.fixture()
def corpus(tmp_path: Path, monkeypatch) -> dict:
    monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path / "cache"))
    index = Index.create(tmp_path / "index", IndexConfig(embed=EmbedConfig(model="hash:64")))
    index.add_documents([Document("harbour.md", "The harbour master is Ilse Varga.", "Harbour"),
                         Document("chef.md", "The chef is Anwen Lark.", "Kitchen")])
    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({"id": "a", "question": "Who is the harbour master?", "answer": "Ilse Varga",
                                     "doc_id": "harbour.md"}) + "\n"
                         + json.dumps({"id": "b", "question": "Who is the chef?", "answer": "Anwen Lark"}) + "\n")
    return {"index": str(tmp_path / "index"), "questions": str(questions), "out": str(tmp_path / "run")}


def test_parse_adapter_model_names():
    assert parse_adapter_model_names(["raft=raft-lora", " sft = sft-lora "]) == {"raft": "raft-lora", "sft": "sft-lora"}
    assert parse_adapter_model_names(["raft=x", "raft=x"]) == {"raft": "x"}
    for bad in (["raft"], ["raft="], ["ft=x"], ["=x"]):
        with pytest.raises(ConfigError, match="KIND=NAME"):
            parse_adapter_model_names(bad)
    with pytest.raises(ConfigError, match="given twice"):
        parse_adapter_model_names(["sft=a", "sft=b"])


def test_endpoint_model_name_per_arm():
    names = {"sft": "sft-lora", "raft": "raft-lora"}
    assert [endpoint_model_name(a, "base-m", names) for a in ("base", "rag", "ft", "ft_rag", "raft")] == [
        "base-m", "base-m", "sft-lora", "sft-lora", "raft-lora"]
    assert endpoint_model_name("rag", None, {}) is None
    with pytest.raises(ConfigError, match="--adapter-model-name raft=NAME"):
        endpoint_model_name("raft", "base-m", {"sft": "sft-lora"})


def test_compare_sends_each_arm_to_its_served_model(endpoint, corpus):
    """Before: an endpoint compare silently answered the tuned arms with the base model (adapters dropped)."""
    config = CompareConfig(**corpus, model=endpoint + "#ignored-fragment", model_name="smol",
                           adapter_model_names={"sft": "sft-lora", "raft": "raft-lora"},
                           arms=("base", "rag", "ft", "raft"), max_new_tokens=8, k=1)
    run = run_compare(config)
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert {(r["arm"], r["answer"]) for r in rows} == {
        ("base", "smol"), ("rag", "smol"), ("ft", "sft-lora"), ("raft", "raft-lora")}
    assert sorted(_ModelsSeen.seen) == sorted(["smol"] * 4 + ["sft-lora"] * 2 + ["raft-lora"] * 2)
    setup = json.loads((run / "results.json").read_text())["setup"]
    assert {a: setup["arms"][a]["remote_model"] for a in config.arms} == {
        "base": "smol", "rag": "smol", "ft": "sft-lora", "raft": "raft-lora"}


def test_compare_on_an_endpoint_refuses_unnamed_tuned_arms_and_adapter_folders(endpoint, corpus, tmp_path):
    with pytest.raises(ConfigError, match="--adapter-model-name raft=NAME"):
        run_compare(CompareConfig(**corpus, model=endpoint, arms=("rag", "raft"), adapter_model_names={"sft": "s"}))
    folder = tmp_path / "adapter"
    folder.mkdir()
    with pytest.raises(ConfigError, match="apply to a local model"):
        run_compare(CompareConfig(**corpus, model=endpoint, arms=("ft",), adapter=str(folder)))
    with pytest.raises(ConfigError, match="is local"):
        run_compare(CompareConfig(**corpus, model="bundled", arms=("rag",), adapter_model_names={"raft": "r"}))
    assert _ModelsSeen.seen == [] and not Path(corpus["out"]).exists()


def test_serve_maps_tuned_arms_to_served_models(endpoint):
    from pydantic import ValidationError

    from ragtune.serve.app import load_generators
    from ragtune.serve.settings import ServeSettings

    settings = ServeSettings(model=endpoint, arms=("base", "ft", "raft"),
                             adapter_model_names={"sft": "sft-lora", "raft": "raft-lora"})
    generators = load_generators(settings)
    assert {arm: gen.remote_model for arm, gen in generators.items()} == {
        "base": "default", "ft": "sft-lora", "raft": "raft-lora"}
    assert generators["raft"].generate([[{"role": "user", "content": "hi"}]])[0].text == "Answer: raft-lora"
    with pytest.raises(ConfigError, match="--adapter-model-name raft=NAME"):
        load_generators(ServeSettings(model=endpoint, arms=("raft",)))
    with pytest.raises(ValidationError, match="is local"):
        ServeSettings(model="bundled", arms=("raft",), adapter_model_names={"raft": "r"})
    with pytest.raises(ValidationError, match="keys are sft and raft"):
        ServeSettings(model=endpoint, arms=("raft",), adapter_model_names={"ft": "r"})
