"""RAFT as `compare --train` trains it meets, at inference, the prompt it was trained on (issue 18).

Each test states one train/inference mismatch that would lose RAFT's gain on a new corpus; a tiny random LM and
the hashing embedder keep them at seconds.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from ragtune.config import GenerateConfig
from ragtune.errors import ConfigError, InputError
from ragtune.index import Index
from ragtune.pipeline import AnswerSettings, answer_from_hits
from ragtune.train.builders import build_raft_examples
from ragtune.types import Document, Example, Generation, Hit
from ragtune.workflows.compare import CompareConfig, run_compare

PAGES = [
    Document("pier.md", "The pier was rebuilt in 1961. Its lamps are green. Gulls nest under the deck.", "Pier"),
    Document("mill.md", "The mill grinds rye on Fridays. The miller is Oskar Veld. It has four sails.", "Mill"),
    Document("school.md", "The school has 212 pupils. Its head teacher is Rina Maas. Lessons start at eight.", "School"),
    Document("clinic.md", "The clinic opens at seven. Doctor Ada Hune runs it. It has three beds.", "Clinic"),
    Document("ferry.md", "The ferry leaves at noon. It carries forty cars. Its captain is Lev Ostrom.", "Ferry"),
]
ASKED = [
    {"id": "p", "question": "When was the pier rebuilt?", "answer": "1961", "doc_id": "pier.md"},
    {"id": "m", "question": "Who is the miller?", "answer": "Oskar Veld", "doc_id": "mill.md"},
    {"id": "s", "question": "How many pupils does the school have?", "answer": "212", "doc_id": "school.md"},
    {"id": "c", "question": "Who runs the clinic?", "answer": "Ada Hune", "doc_id": "clinic.md"},
    {"id": "f", "question": "Who is the captain of the ferry?", "answer": "Lev Ostrom", "doc_id": "ferry.md"},
]
_SOURCE = re.compile(r"^\[\d+\] ", re.MULTILINE)


@pytest.fixture()
def town(corpus) -> dict:
    made = corpus(PAGES, ASKED)
    return {**made, "out": str(made["tmp"] / "run")}


def _train_run(town: dict, **changes) -> CompareConfig:
    return CompareConfig(**{**dict(index=town["index"], questions=town["questions"], out=town["out"], arms=("raft",),
                                   model=town["model"], max_new_tokens=4, train=True, train_data=town["questions"],
                                   train_epochs=1), **changes})


def _sources_shown(user_message: str) -> int:
    return len(_SOURCE.findall(user_message))


def test_raft_trains_on_k_passages_from_the_runs_retrieval_mode(town, monkeypatch):
    """Before: 1 oracle + 3 distractors (4 passages) whatever k, distractors from hybrid whatever --mode; the raft
    arm then answered from k=2 bm25 passages."""
    import ragtune.train.builders as builders

    modes = []
    real = builders.open_retriever
    monkeypatch.setattr(builders, "open_retriever", lambda index, mode, **kw: modes.append(mode) or real(index, mode, **kw))
    run = run_compare(_train_run(town, k=2, mode="bm25"))
    rows = [json.loads(line) for line in (run / "adapters" / "raft_train.jsonl").read_text().splitlines()]
    assert len(rows) == len(ASKED)
    assert [_sources_shown(r["messages"][-2]["content"]) for r in rows] == [2] * len(ASKED)
    assert modes == ["bm25"]


class _Neutral:
    """A reranking scorer (ragtune.retrieve.rerank) with no preference: no LLM is loaded."""

    def score(self, query, passages):
        return [0.0] * len(passages)


def test_raft_distractors_come_from_the_runs_rerank_settings(town, monkeypatch):
    """With a +rerank --mode, RAFT's distractors are retrieved with the run's --rerank-depth / --rerank-weight too
    (before: at the default depth), and the search's training uses the same layout; without them the layout (and so
    the search's adapter cache keys) is as before."""
    import ragtune.train.builders as builders
    from ragtune.workflows.train_arms import raft_layout
    from ragtune.workflows.trained_adapters import SearchTraining

    monkeypatch.setattr("ragtune.retrieve.rerank.load_scorer", lambda model: _Neutral())
    opened = []
    real = builders.open_retriever
    monkeypatch.setattr(builders, "open_retriever",
                        lambda index, mode, **kw: opened.append((mode, kw)) or real(index, mode, **kw))
    config = _train_run(town, k=2, mode="bm25+rerank", rerank_depth=3, rerank_weight=0.5)
    run_compare(config)
    assert opened == [("bm25+rerank", {"rerank_depth": 3, "rerank_weight": 0.5})]
    layout = {"distractors": 1, "retrieve_mode": "bm25+rerank",
              "retrieve_options": {"rerank_depth": 3, "rerank_weight": 0.5}}
    assert raft_layout(config) == layout
    assert SearchTraining(config, None, town["tmp"])._settings("raft") == layout
    assert raft_layout(_train_run(town, k=3, mode="bm25")) == {"distractors": 2, "retrieve_mode": "bm25"}


def _inference_messages(question: str, hits: list[Hit], settings: AnswerSettings) -> list[dict[str, str]]:
    seen = []

    class Recorder:
        model_id = "recorder"
        batch_size = None

        def generate(self, batch, max_new_tokens=64):
            seen.extend(batch)
            return [Generation("x")] * len(batch)

    answer_from_hits([question], [hits], Recorder(), settings)
    return seen[0]


def _raft_and_inference(town: dict, train_cut: int, settings: AnswerSettings):
    """The training messages of one RAFT example with the oracle, and what inference sends for the same passages
    in rank order (the passages numbered as at training)."""
    index = Index.open(town["index"])
    example = Example(question="Who is the miller?", answer="Oskar Veld", doc_id="mill.md", qid="m")
    built = build_raft_examples([example], index, distractors=2, p_oracle=1.0, context_sentences=train_cut)[0]
    hits = [Hit(chunk=c, score=1.0, rank=r) for r, c in enumerate(index.get_chunks(built.meta["chunk_ids"]))]
    return built.messages, _inference_messages(example.question, hits, dataclasses.replace(settings,
                                                                                             embedder=index.embedder))


def test_training_prompt_is_the_inference_prompt_byte_for_byte(town):
    """Same template function and same passages: the adapter sees at inference the bytes it was trained on."""
    raft_arm = AnswerSettings.resolve(GenerateConfig(model=town["model"], adapter="raft-adapter"))
    assert raft_arm.prompt_style == "plain"
    for cut in (0, 3):
        trained, answered = _raft_and_inference(town, cut, dataclasses.replace(raft_arm, context_sentences=cut))
        assert trained == answered


@pytest.mark.xfail(strict=True, reason="compare --train trains RAFT on whole passages (context_sentences=0) while "
                   "the raft arm reads them cut to 3 sentences: a measured choice (builders.build_raft_examples "
                   "docstring: 0.340 vs 0.288 F1 on visible SQuAD; re-measured for issue 18 with the new defaults on "
                   "choose-split articles 4-6: 0.392 vs 0.335, bench/bench_raft_mix.py default vs cut3)")
def test_compare_trains_raft_on_passages_cut_as_the_raft_arm_reads_them(town):
    raft_arm = AnswerSettings.resolve(GenerateConfig(model=town["model"], adapter="raft-adapter"))
    assert raft_arm.context_sentences == 3
    from ragtune.workflows.train_arms import train_adapters  # noqa: F401 - the path compare --train takes

    trained, answered = _raft_and_inference(town, 0, raft_arm)  # 0: what train_adapters passes by default
    assert trained == answered


def test_train_minutes_plans_before_training_and_is_recorded(town, monkeypatch):
    from ragtune.train import budget

    monkeypatch.setattr(budget, "probe_speed", lambda train, config, seed=0: budget.Speed(100.0, 50.0, 1.0))
    heard = []
    # 0.5 s an example, 1 s fixed: 4.8 s hold one pass over the 5 examples (2.5 s), not the default 2 epochs
    run = run_compare(_train_run(town, k=2, train_epochs=None, train_minutes=0.08),
                      on_train_plan=lambda kind, plan: heard.append((kind, plan.examples, plan.epochs)))
    assert heard == [("raft", 5, 1)]
    results = json.loads((run / "results.json").read_text())
    training = results["setup"]["training"]["raft"]
    assert training["plan"]["examples"] == 5 and training["plan"]["available"] == len(ASKED)
    assert training["plan"]["estimated_minutes"] == pytest.approx((1 + 2.5) / 60, abs=1e-3)
    assert training["epochs"] == 1 and training["metrics"]["epochs"] == 1
    assert json.loads((run / "config.json").read_text())["train_minutes"] == 0.08


def test_trained_adapter_paths_in_results_point_into_the_finished_run(town):
    """Before: setup recorded RUN.partial/adapters/raft, a folder gone once the run is renamed into place."""
    run = run_compare(_train_run(town, k=2))
    setup = json.loads((run / "results.json").read_text())["setup"]
    assert setup["training"]["raft"]["path"] == setup["arms"]["raft"]["adapter"] == str(run / "adapters" / "raft")
    assert (Path(setup["arms"]["raft"]["adapter"]) / "ragtune_adapter.json").is_file()


def test_train_minutes_without_train_is_a_config_error(town):
    with pytest.raises(ConfigError, match="--train-minutes"):
        run_compare(_train_run(town, train=False, raft_adapter=None, train_minutes=1.0, arms=("base",)))


def test_compare_train_synthesises_questions_by_rules_and_trains_without_lora_dropout(town, monkeypatch):
    """Issues 18 and 15: both kinds' training questions are written by rules (RAFT: up to 4 per chunk, no
    paraphrases; SFT: up to 4 per chunk plus a rule paraphrase each), so no model is loaded to write them, and
    adapters train without LoRA dropout."""
    import ragtune.generate
    import ragtune.train.trainer as trainer
    from ragtune.workflows import train_arms

    def no_model(config, **kwargs):
        raise AssertionError("training questions are written by rules: no model may be loaded for them")

    monkeypatch.setattr(ragtune.generate, "load_generator", no_model)
    seen = {}
    real = trainer.finetune

    def recording(train, out_dir, config, **kwargs):
        seen[Path(out_dir).name] = (config.lora_dropout, len(train))
        return real(train, out_dir, config, **kwargs)

    monkeypatch.setattr(trainer, "finetune", recording)
    run_compare(_train_run(town, arms=("ft", "raft"), train_data=None, k=2))
    index = Index.open(town["index"])
    raft = train_arms.training_examples(index, None, kind="raft")
    assert {e.metadata["method"] for e in raft} == {"rules"} and seen["raft"] == (0.0, len(raft))
    assert all(sum(e.chunk_id == c for e in raft) <= 4 for c in {e.chunk_id for e in raft})
    assert {e.metadata["kind"] for e in raft} == {"original"}
    sft = train_arms.training_examples(index, None, kind="sft")
    kinds = [e.metadata["kind"] for e in sft]
    assert {e.metadata["method"] for e in sft} == {"rules"} and "paraphrase" in kinds
    assert kinds.count("original") == len(raft)  # the same rule questions, each followed by its paraphrase
    assert seen["sft"][0] == 0.0 and seen["sft"][1] >= len(sft)


def test_llm_paraphrases_load_the_model_once_and_release_it(town, monkeypatch):
    """paraphraser 'llm' loads the generator for the paraphrases only, and the process-wide cache does not keep
    it after synthesis, before training loads its own copy (issue 15: the demo held both); a paraphraser name it
    does not know fails."""
    from ragtune.generate import registry
    from ragtune.workflows import train_arms

    index = Index.open(town["index"])
    registry.clear_generator_cache()
    loads = []
    real = registry.load_generator
    monkeypatch.setattr("ragtune.generate.load_generator",
                        lambda config, **kwargs: loads.append(config) or real(config, **kwargs))
    synthesis = {"per_chunk": 1, "paraphrases": 1, "questions": "rules", "paraphraser": "llm"}
    examples = train_arms.training_examples(index, None, model=town["model"], kind="sft", synthesis=synthesis)
    assert len(loads) == 1 and examples and registry._CACHE == {}
    with pytest.raises(InputError, match="paraphraser"):
        train_arms.training_examples(index, None, kind="sft", synthesis={**synthesis, "paraphraser": "t5"})
