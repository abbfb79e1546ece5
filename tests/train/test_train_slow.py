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


# Two processes (`--nproc 2`) learn what one does: tests/train/test_train_ddp.py shows their weights equal one
# process's at twice the batch (to 1e-5), and the test above shows one process learns the facts, so a second
# learning run of several minutes here would only repeat them (`bench/bench_train.py --nproc 1,2` times both).
