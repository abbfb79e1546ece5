"""Bootstrap CIs and paired tests on constructed data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ragtune.errors import InputError
from ragtune.evaluate.stats import bootstrap_ci, detectable_difference, holm, paired_test, sign_flip_p_value


def test_identical_arms_p_one_and_ci_contains_zero():
    rng = np.random.default_rng(3)
    a = rng.random(50)
    test = paired_test(a, a.copy(), seed=1)
    assert test.delta == 0.0
    assert test.p_value == 1.0
    assert test.ci[0] <= 0.0 <= test.ci[1]
    assert not test.significant()


def test_constant_shift_is_significant():
    rng = np.random.default_rng(4)
    b = rng.random(40)
    test = paired_test(b + 0.1, b, seed=0)
    assert test.delta == pytest.approx(0.1)
    assert test.p_value < 0.01
    assert test.ci == pytest.approx((0.1, 0.1))
    assert test.significant()


def test_noisy_shift_detected_and_null_not():
    rng = np.random.default_rng(5)
    base = rng.random(300)
    better = np.clip(base + 0.15 + rng.normal(0, 0.2, 300), 0, 1)
    assert paired_test(better, base, seed=0).p_value < 0.01
    same = np.clip(base + rng.normal(0, 0.2, 300), 0, 1) - np.clip(base + rng.normal(0, 0.2, 300), 0, 1)
    null = paired_test(same + 0.5, np.full(300, 0.5), seed=0)
    assert null.p_value > 0.05
    assert null.ci[0] < 0 < null.ci[1]


def test_exact_sign_flip_hand_worked():
    # All 2**n sign patterns: only all-plus and all-minus reach |mean| = 1, so p = 2 / 2**n.
    assert sign_flip_p_value([1.0, 1.0, 1.0], n_resamples=2000) == (0.25, "exact sign-flip")
    assert sign_flip_p_value([1.0] * 5, n_resamples=2000)[0] == pytest.approx(2 / 32)
    # d = [2, 1]: flips give means 1.5, 0.5, -0.5, -1.5; |mean| >= 1.5 in 2 of 4.
    assert sign_flip_p_value([2.0, 1.0], n_resamples=2000)[0] == 0.5


def test_bootstrap_ci_coverage_near_95_percent():
    rng = np.random.default_rng(11)
    true_mean, covered, repeats = 0.6, 0, 200
    for i in range(repeats):
        sample = rng.binomial(1, true_mean, size=80).astype(float)
        lo, hi = bootstrap_ci(sample, seed=i, n_resamples=1000)
        covered += lo <= true_mean <= hi
    assert 0.88 <= covered / repeats <= 0.99


def test_bootstrap_ci_is_deterministic_and_brackets_the_mean():
    values = [0.0, 1.0, 0.5, 0.25, 1.0, 0.0, 0.75]
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    lo, hi = bootstrap_ci(values, seed=7)
    assert lo < np.mean(values) < hi
    assert bootstrap_ci([0.4], seed=0) == (0.4, 0.4)


def test_holm_hand_worked():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01=0.03, 2*0.03=0.06, max(0.06, 1*0.04)=0.06
    assert holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([]) == []


def test_invalid_inputs_raise():
    with pytest.raises(InputError, match="non-empty"):
        bootstrap_ci([])
    with pytest.raises(InputError, match="NaN"):
        bootstrap_ci([0.1, float("nan")])
    with pytest.raises(InputError, match="differ in length"):
        paired_test([1.0, 2.0], [1.0])
    with pytest.raises(InputError, match="alpha"):
        bootstrap_ci([1.0, 2.0], alpha=1.5)


def test_the_detectable_difference_is_found_about_as_often_as_its_power_says():
    """A true lead of detectable_difference(...) is confirmed by the paired test in ~80% of samples of that size."""
    rng = np.random.default_rng(0)
    n, alpha = 150, 0.01
    noise = rng.normal(0.0, 0.3, size=n)
    lead = detectable_difference(noise - noise.mean(), alpha=alpha)
    assert 0.06 < lead < 0.1  # (2.576 + 0.842) * 0.3 / sqrt(150) = 0.084
    found = sum(paired_test(rng.normal(lead, 0.3, size=n), np.zeros(n), seed=i).p_value < alpha for i in range(150))
    assert 0.65 < found / 150 < 0.93
    assert detectable_difference(noise, alpha=0.05) < lead  # a looser level confirms smaller leads
    assert detectable_difference([0.2]) == float("inf") and detectable_difference([0.1, 0.1]) == 0.0
    with pytest.raises(InputError, match="power"):
        detectable_difference([0.1, 0.2], power=1.0)
