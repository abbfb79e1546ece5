"""A training budget in minutes (`compare --train --train-minutes M`, `finetune --train-minutes M`): how many
examples and epochs fit, from this machine's training speed probed on the examples themselves.

The arithmetic (`plan_training`) is pure; `probe_speed` times one optimizer step of the real model on a sample
of the real examples, and `fit_to_budget` ties them together for the trainer's callers.

Policy: never more than the requested epochs or the examples there are (a bigger budget is not spent); when the
whole set does not fit, fewer epochs first (down to 1: distinct examples teach more than repeats), then a seeded
sample of the examples.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ragtune.errors import InputError
from ragtune.train.builders import TrainExample
from ragtune.train.config import FinetuneConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainPlan:
    """What a budget allows: `examples` of `available` for `epochs` epochs, estimated to take
    `estimated_minutes` (fixed costs included) against `minutes` asked."""

    minutes: float
    examples: int
    available: int
    epochs: int
    tokens_per_example: float
    tokens_per_s: float
    fixed_s: float  # model load and the speed probe: seconds no budget choice can save
    estimated_minutes: float

    def describe(self) -> dict[str, Any]:
        """The JSON-able record (results.json setup["training"][kind]["plan"], the adapter's run config)."""
        return {key: round(value, 3) if isinstance(value, float) else value for key, value in asdict(self).items()}

    def summary(self, kind: str) -> str:
        """One line for the user, printed before training."""
        return (f"{kind} training plan for {self.minutes:g} min: {self.examples} of {self.available} examples x "
                f"{self.epochs} epoch(s), ~{self.tokens_per_example:.0f} tokens each at {self.tokens_per_s:.0f} "
                f"tokens/s -> ~{self.estimated_minutes:.1f} min")


def plan_training(
    available: int,
    tokens_per_example: float,
    tokens_per_s: float,
    minutes: float,
    epochs: int,
    *,
    fixed_s: float = 0.0,
    min_examples: int = 8,
) -> TrainPlan:
    """The examples and epochs that fit `minutes`, given the mean tokens per example and the training speed.

    Time per pass over n examples is n x tokens_per_example / tokens_per_s; `fixed_s` (loading, probing) is
    spent first. At least min(available, min_examples) examples for one epoch are always planned, even past
    the budget (the estimate then says so).

    >>> plan_training(100, 500, 1000, minutes=2, epochs=2).epochs  # 2 passes of 50 s fit in 120 s
    2
    >>> p = plan_training(400, 500, 1000, minutes=2, epochs=2); (p.examples, p.epochs)  # one pass needs 200 s
    (240, 1)
    """
    if available < 1:
        raise InputError(f"no training examples to plan for (available={available})")
    if minutes <= 0:
        raise InputError(f"the training budget must be positive, got {minutes} minutes")
    if tokens_per_example <= 0 or tokens_per_s <= 0:
        raise InputError(f"tokens per example and tokens/s must be positive, got {tokens_per_example} and "
                         f"{tokens_per_s}")
    if epochs < 1:
        raise InputError(f"epochs must be at least 1, got {epochs}")
    seconds_per_example = tokens_per_example / tokens_per_s
    steps_s = max(0.0, minutes * 60 - fixed_s)
    passes = steps_s / (available * seconds_per_example)  # whole passes over every example that fit
    if passes >= 1:
        n, chosen_epochs = available, min(epochs, int(passes))
    else:
        n, chosen_epochs = int(steps_s / seconds_per_example), 1
        n = min(available, max(n, min_examples))
    estimated = (fixed_s + n * chosen_epochs * seconds_per_example) / 60
    return TrainPlan(minutes=minutes, examples=n, available=available, epochs=chosen_epochs,
                     tokens_per_example=tokens_per_example, tokens_per_s=tokens_per_s, fixed_s=fixed_s,
                     estimated_minutes=estimated)


@dataclass(frozen=True)
class Speed:
    """Measured training speed: real tokens per second of optimizer steps, the mean tokens per example of the
    whole set, and the seconds spent outside steps (loading the model) plus the probe itself."""

    tokens_per_s: float
    tokens_per_example: float
    fixed_s: float


def probe_speed(train: Sequence[TrainExample], config: FinetuneConfig, *, seed: int = 0) -> Speed:
    """Time one optimizer step of `config`'s model on a seeded sample of `train` (one micro-batch's worth), and
    count the tokens of every example with the model's tokenizer. The probe's adapter is thrown away.

    The first step includes one-off warm-up, so the speed is a little pessimistic: plans err on the short side.
    """
    from transformers import AutoTokenizer

    from ragtune.train.adapter import resolve_base_model
    from ragtune.train.collate import tokenize_examples
    from ragtune.train.trainer import finetune

    began = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_base_model(config.base_model)))
    lengths = [len(item) for item in tokenize_examples(train, tokenizer, config.max_len).items]
    if not lengths:
        raise InputError(f"no trainable examples: all {len(train)} are longer than max_len {config.max_len}")
    # Steps run in micro-batches of at most micro_batch_tokens, so tokens/s hardly depends on the batch: probing
    # one micro-batch's worth of examples (at least 2) costs a fraction of a step.
    mean = sum(lengths) / len(lengths)
    per_micro = int(config.micro_batch_tokens // mean) if config.micro_batch_tokens else config.batch_size
    sample = random.Random(seed).sample(list(train), min(len(train), config.batch_size, max(2, per_micro)))
    probe_config = config.model_copy(update={"epochs": 1, "max_steps": 1, "checkpoint_every": 0})
    with tempfile.TemporaryDirectory(prefix="ragtune-probe-") as tmp:
        metrics = finetune(sample, Path(tmp) / "probe", probe_config).metrics
    wall = time.perf_counter() - began
    tokens_per_s = float(metrics.get("tokens_per_s") or 0.0)
    if tokens_per_s <= 0:
        raise InputError("the training speed probe measured no tokens")
    # The real run loads the model again: count the probe's time outside its step once more.
    load_s = max(0.0, wall - float(metrics.get("train_seconds") or 0.0))
    return Speed(tokens_per_s=tokens_per_s, tokens_per_example=mean, fixed_s=wall + load_s)


def fit_to_budget(
    train: Sequence[TrainExample], config: FinetuneConfig, minutes: float, *, seed: int = 0,
    speed: Speed | None = None,
) -> tuple[list[TrainExample], FinetuneConfig, TrainPlan]:
    """The examples (a seeded sample, in their order) and config (epochs) that fit `minutes`, and the plan.
    `speed` skips the probe (tests, or a speed measured before)."""
    speed = speed or probe_speed(train, config, seed=seed)
    plan = plan_training(len(train), speed.tokens_per_example, speed.tokens_per_s, minutes, config.epochs,
                         fixed_s=speed.fixed_s, min_examples=min(config.batch_size, len(train)))
    kept = sorted(random.Random(seed).sample(range(len(train)), plan.examples))
    chosen = [train[i] for i in kept]
    return chosen, config.model_copy(update={"epochs": plan.epochs}), plan

