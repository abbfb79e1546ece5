"""Knowledge injection with the real bundled model: closed-book SFT on sample facts it cannot know."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import ragtune

SAMPLE_QUESTIONS = Path(ragtune.__file__).parent / "sample" / "questions.jsonl"
N_FACTS = 30
EPOCHS = 10  # measured: 8 epochs -> 0.67 (too close to the bar), 10 -> 0.97 (base 0.03)


def _normalise(text: str) -> str:
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def _closed_book_accuracy(generator, examples) -> float:
    from ragtune.generate.prompts import build_messages, parse_answer

    generations = generator.generate([build_messages(e.question, None) for e in examples], max_new_tokens=16)
    hits = [any(_normalise(a) in _normalise(parse_answer(g.text).answer) for a in e.gold_answers)
            for e, g in zip(examples, generations)]
    return sum(hits) / len(hits)


@pytest.mark.slow
def test_sft_injects_sample_facts_into_bundled_model(tmp_path):
    from ragtune.config import GenerateConfig
    from ragtune.generate import load_generator
    from ragtune.train import FinetuneConfig, build_sft_examples, finetune, load_examples

    if not SAMPLE_QUESTIONS.is_file():
        pytest.skip(f"sample questions not found at {SAMPLE_QUESTIONS}")
    facts = [e for e in load_examples(SAMPLE_QUESTIONS).examples if e.metadata.get("split") == "train"][:N_FACTS]
    assert len(facts) == N_FACTS
    before = _closed_book_accuracy(load_generator(GenerateConfig(max_new_tokens=16)), facts)
    info = finetune(build_sft_examples(facts, paraphrases=False), tmp_path / "adapter",
                    FinetuneConfig(epochs=EPOCHS, checkpoint_every=0))
    after = _closed_book_accuracy(load_generator(GenerateConfig(max_new_tokens=16,
                                                                adapter=str(tmp_path / "adapter"))), facts)
    print(json.dumps({"before": before, "after": after, **info.metrics}))
    assert before <= 0.15
    assert after > 0.5
    assert info.metrics["loss_last_epoch"] < info.metrics["loss_first_epoch"] / 3


@pytest.mark.slow  # ~4 min on the loaded 2-core machine (two processes of ~1.5 GB)
def test_two_processes_inject_sample_facts_as_well_as_one(tmp_path):
    """--nproc 2 at half the per-process batch (same global batch 8): measured 0.97 after, as one process."""
    from ragtune.config import GenerateConfig
    from ragtune.generate import load_generator
    from ragtune.train import FinetuneConfig, build_sft_examples, finetune, load_examples

    if not SAMPLE_QUESTIONS.is_file():
        pytest.skip(f"sample questions not found at {SAMPLE_QUESTIONS}")
    facts = [e for e in load_examples(SAMPLE_QUESTIONS).examples if e.metadata.get("split") == "train"][:N_FACTS]
    info = finetune(build_sft_examples(facts, paraphrases=False), tmp_path / "adapter",
                    FinetuneConfig(epochs=EPOCHS, checkpoint_every=0, batch_size=4), nproc=2)
    after = _closed_book_accuracy(load_generator(GenerateConfig(max_new_tokens=16,
                                                                adapter=str(tmp_path / "adapter"))), facts)
    print(json.dumps({"after": after, **info.metrics}))
    assert info.metrics["world_size"] == 2 and info.metrics["rank_weight_max_diff"] == 0.0
    assert after > 0.5
    assert info.metrics["loss_last_epoch"] < info.metrics["loss_first_epoch"] / 3
