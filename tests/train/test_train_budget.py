"""--train-minutes: the budget arithmetic (pure), the cut it makes, and the speed probe on a tiny model."""

from __future__ import annotations

import pytest

from ragtune.errors import InputError
from ragtune.train.budget import Speed, fit_to_budget, plan_training, probe_speed
from ragtune.train.builders import TrainExample
from ragtune.train.config import FinetuneConfig


def test_everything_fits_keeps_all_examples_and_the_asked_epochs():
    # 100 examples x 500 tokens at 1000 tokens/s: 50 s a pass; 10 minutes hold 12 passes, 2 are asked
    plan = plan_training(100, 500, 1000, minutes=10, epochs=2)
    assert (plan.examples, plan.epochs) == (100, 2)
    assert plan.estimated_minutes == pytest.approx(100 / 60)


def test_fewer_epochs_before_fewer_examples():
    # 3 passes asked, 2.4 fit (120 s / 50 s): every example, 2 epochs
    plan = plan_training(100, 500, 1000, minutes=2, epochs=3)
    assert (plan.examples, plan.epochs) == (100, 2)
    assert plan.estimated_minutes == pytest.approx(100 / 60)


def test_less_than_one_pass_samples_the_examples_that_fit():
    # one pass over 400 examples takes 200 s; 120 s hold 240 examples once
    plan = plan_training(400, 500, 1000, minutes=2, epochs=2)
    assert (plan.examples, plan.epochs) == (240, 1)
    assert plan.estimated_minutes == pytest.approx(2.0)


def test_fixed_seconds_come_out_of_the_budget():
    # 60 s of loading and probing leave 60 s: 120 examples once
    plan = plan_training(400, 500, 1000, minutes=2, epochs=2, fixed_s=60)
    assert (plan.examples, plan.epochs) == (120, 1)
    assert plan.estimated_minutes == pytest.approx(2.0)


def test_a_budget_too_small_still_trains_a_minimum_and_says_it_is_over():
    plan = plan_training(400, 500, 1000, minutes=0.5, epochs=2, fixed_s=60, min_examples=8)
    assert (plan.examples, plan.epochs) == (8, 1)
    assert plan.estimated_minutes == pytest.approx((60 + 8 * 0.5) / 60)
    assert plan.estimated_minutes > plan.minutes
    assert plan_training(5, 500, 1000, minutes=0.01, epochs=2, min_examples=8).examples == 5  # never more than there are


@pytest.mark.parametrize("args", [(0, 500, 1000, 1, 1), (10, 0, 1000, 1, 1), (10, 500, 0, 1, 1),
                                  (10, 500, 1000, 0, 1), (10, 500, 1000, 1, 0)])
def test_bad_inputs_are_named(args):
    with pytest.raises(InputError):
        plan_training(*args[:4], epochs=args[4])


def test_plan_is_recorded_and_summarised():
    plan = plan_training(400, 500.0, 1000.0, minutes=2, epochs=2)
    record = plan.describe()
    assert record == {"minutes": 2, "examples": 240, "available": 400, "epochs": 1, "tokens_per_example": 500.0,
                      "tokens_per_s": 1000.0, "fixed_s": 0.0, "estimated_minutes": 2.0}
    assert plan.summary("raft") == ("raft training plan for 2 min: 240 of 400 examples x 1 epoch(s), ~500 tokens "
                                    "each at 1000 tokens/s -> ~2.0 min")


def _examples(n: int) -> list[TrainExample]:
    return [TrainExample([{"role": "user", "content": f"Question: q{i}?"}], f"a{i}", {"qid": str(i)})
            for i in range(n)]


def test_fit_to_budget_cuts_a_seeded_sample_in_order_and_sets_the_epochs():
    train = _examples(40)
    speed = Speed(tokens_per_s=100.0, tokens_per_example=50.0, fixed_s=0.0)  # 0.5 s an example
    chosen, config, plan = fit_to_budget(train, FinetuneConfig(epochs=2), 0.1, seed=3, speed=speed)  # 6 s
    assert (plan.examples, plan.epochs, config.epochs) == (12, 1, 1)
    assert len(chosen) == 12 and len({e.meta["qid"] for e in chosen}) == 12
    positions = [train.index(e) for e in chosen]
    assert positions == sorted(positions)
    again, _, _ = fit_to_budget(train, FinetuneConfig(epochs=2), 0.1, seed=3, speed=speed)
    assert again == chosen
    whole, config, _ = fit_to_budget(train, FinetuneConfig(epochs=2), 10, seed=3, speed=speed)
    assert whole == train and config.epochs == 2


def test_probe_measures_speed_and_tokens_on_the_real_examples(train_lm_dir):
    from transformers import AutoTokenizer

    from ragtune.train.collate import tokenize_examples

    train = _examples(12)
    config = FinetuneConfig(base_model=str(train_lm_dir), batch_size=4, lora_r=2, lora_alpha=4, num_threads=1)
    speed = probe_speed(train, config, seed=0)
    lengths = [len(x) for x in tokenize_examples(train, AutoTokenizer.from_pretrained(str(train_lm_dir)), 1024).items]
    assert speed.tokens_per_example == pytest.approx(sum(lengths) / len(lengths))
    assert speed.tokens_per_s > 0 and speed.fixed_s > 0

