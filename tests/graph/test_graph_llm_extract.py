"""The optional LLM extractor, driven by a scripted fake generator (no model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragtune.config import ChunkConfig, EmbedConfig, IndexConfig
from ragtune.errors import ConfigError
from ragtune.graph import store as gs
from ragtune.graph.llm_extract import LLMExtractor, get_extractor, parse_entity_lines
from ragtune.index import Index
from ragtune.types import Document, Generation

CONFIG = IndexConfig(embed=EmbedConfig(model="hash:64"), chunk=ChunkConfig(chunk_tokens=64, overlap_tokens=8))


class ScriptedGenerator:
    """Answers every passage with the lower-cased words it knows, one per line, plus one invented name."""

    model_id = "scripted"

    def __init__(self, known: list[str]):
        self.known = known
        self.calls = 0

    def generate(self, batch, max_new_tokens: int = 64):
        self.calls += 1
        out = []
        for messages in batch:
            passage = messages[-1]["content"]
            names = [k for k in self.known if k.lower() in passage.lower()] + ["Invented Person"]
            out.append(Generation(text="\n".join(f"- {n}" for n in names)))
        return out


def test_parse_entity_lines_keeps_only_names_in_the_passage() -> None:
    passage = "The harbour master works at Saltmere Harbour. She reports to the board."
    mentions = parse_entity_lines("1. Saltmere Harbour\n* board\n- Atlantis\n\nharbour master: a role", passage)
    assert [(m.key, m.sentence) for m in mentions] == [("saltmere harbour", 0), ("board", 1), ("harbour master", 0)]


def test_llm_extractor_batches_and_merges_aliases() -> None:
    generator = ScriptedGenerator(["Rafferty Dunmore", "Dunmore", "kelp forest"])
    extractor = LLMExtractor(generator, batch_size=2)
    per_chunk = extractor(["Rafferty Dunmore dives.", "Dunmore counts the kelp forest.", "Nothing here."])
    assert [[m.key for m in ms] for ms in per_chunk] == [["rafferty dunmore"], ["rafferty dunmore", "kelp forest"], []]
    assert generator.calls == 2


def test_unknown_extractor_spec_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'spacy'"):
        get_extractor("spacy")


def test_graph_built_with_the_llm_extractor_keeps_it_for_later_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = ScriptedGenerator(["harbour master", "tide gauge", "Saltmere"])
    monkeypatch.setattr("ragtune.generate.registry.load_generator", lambda config=None: generator)
    index = Index.create(tmp_path / "ix", CONFIG)
    index.add_documents([Document("a", "the harbour master reads the tide gauge.")])
    manifest = gs.sync_graph(index, extractor="llm:fake")
    assert manifest.extractor == "llm:fake"
    _state, graph = gs.load_graph(index)
    assert sorted(graph.keys) == ["harbour master", "tide gauge"]  # lower-case names the rules would miss
    index.add_documents([Document("b", "The tide gauge at Saltmere is old.")])  # the hook reuses the LLM
    assert gs.read_graph_manifest(index.path).extractor == "llm:fake"
    _state, graph = gs.load_graph(index)
    assert {"saltmere", "tide gauge"} <= set(graph.keys)
    # switching back to the rules re-extracts everything
    gs.sync_graph(index, extractor="rules")
    _state, graph = gs.load_graph(index)
    assert "harbour master" not in graph.keys and "saltmere" in graph.keys
