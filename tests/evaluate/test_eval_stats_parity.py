"""Parity of ragtune.evaluate.stats with references: scipy.stats.bootstrap, scipy.stats.permutation_test, and
Holm's step-down procedure written out from its definition."""

from __future__ import annotations

import numpy as np
import pytest

from ragtune.evaluate.stats import bootstrap_ci, holm, paired_test, sign_flip_p_value

scipy_stats = pytest.importorskip("scipy.stats")


def _mean_difference(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bootstrap_ci_matches_scipy_percentile(seed):
    rng = np.random.default_rng(100 + seed)
    values = rng.beta(2, 3, size=60)  # per-question scores in [0, 1]
    ours = bootstrap_ci(values, seed=seed, n_resamples=20000)
    ref = scipy_stats.bootstrap((values,), np.mean, n_resamples=20000, method="percentile", confidence_level=0.95,
                                random_state=np.random.default_rng(seed)).confidence_interval
    # two Monte Carlo estimates of the same quantiles: they agree to a small fraction of the interval's width
    width = ref.high - ref.low
    assert ours[0] == pytest.approx(ref.low, abs=0.03 * width)
    assert ours[1] == pytest.approx(ref.high, abs=0.03 * width)


def test_exact_sign_flip_equals_scipy_paired_permutation_test():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2, size=11).astype(float)  # exact-match scores: ties everywhere
    b = np.clip(a - rng.integers(0, 2, size=11) + rng.integers(0, 2, size=11), 0, 1)
    for x, y in [(a, b), (rng.random(10), rng.random(10)), (rng.random(12) + 0.2, rng.random(12))]:
        ours, method = sign_flip_p_value(x - y, n_resamples=2 ** x.size)
        ref = scipy_stats.permutation_test((x, y), _mean_difference, permutation_type="samples", vectorized=True,
                                           n_resamples=np.inf, alternative="two-sided").pvalue
        assert method == "exact sign-flip"
        assert ours == pytest.approx(ref, abs=1e-12)


def test_monte_carlo_sign_flip_agrees_with_scipy():
    rng = np.random.default_rng(11)
    x = rng.random(40)
    y = x - 0.05 + 0.2 * rng.standard_normal(40)
    ours, method = sign_flip_p_value(x - y, seed=3, n_resamples=20000)
    ref = scipy_stats.permutation_test((x, y), _mean_difference, permutation_type="samples", vectorized=True,
                                       n_resamples=20000, alternative="two-sided",
                                       random_state=np.random.default_rng(3)).pvalue
    assert method == "sign-flip permutation"
    assert 0.01 < ref < 0.99  # a p-value with room on both sides
    assert ours == pytest.approx(ref, abs=0.015)


def test_paired_test_interval_is_the_bootstrap_of_the_differences():
    rng = np.random.default_rng(5)
    a, b = rng.random(50), rng.random(50)
    result = paired_test(a, b, seed=0, n_resamples=20000)
    ref = scipy_stats.bootstrap((a - b,), np.mean, n_resamples=20000, method="percentile",
                                random_state=np.random.default_rng(0)).confidence_interval
    width = ref.high - ref.low
    assert result.delta == pytest.approx(float(np.mean(a - b)))
    assert result.ci[0] == pytest.approx(ref.low, abs=0.03 * width)
    assert result.ci[1] == pytest.approx(ref.high, abs=0.03 * width)


def _holm_by_definition(p):
    """Holm (1979): sort ascending; the i-th smallest gets max over j <= i of min(1, (m - j) * p_(j)), 0-based j."""
    m = len(p)
    order = sorted(range(m), key=lambda i: (p[i], i))
    adjusted = [0.0] * m
    for rank, i in enumerate(order):
        adjusted[i] = max(min(1.0, (m - j) * p[order[j]]) for j in range(rank + 1))
    return adjusted


def test_holm_textbook_example():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


@pytest.mark.parametrize("seed", range(5))
def test_holm_matches_its_definition(seed):
    rng = np.random.default_rng(seed)
    p = list(rng.random(9) ** 3)  # skewed towards small p-values, some adjust past 1
    p[3] = p[5]  # a tie
    assert holm(p) == pytest.approx(_holm_by_definition(p), abs=1e-12)
