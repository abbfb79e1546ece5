"""Statistics for comparing arms: bootstrap confidence intervals and paired significance tests.

Every function takes an explicit `seed`, so a run's numbers are reproducible. Confidence intervals are
percentile bootstraps of the mean. Paired tests work on per-question differences (both arms answered the same
questions): the p-value comes from a sign-flip permutation test (exact when 2**n is small, Monte Carlo
otherwise), the interval on the difference from a paired bootstrap. `holm` adjusts a family of p-values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ragtune.errors import InputError

DEFAULT_RESAMPLES = 2000
_CHUNK = 512  # resamples drawn per block, to bound memory at (block, n)


def _as_array(values: Sequence[float], name: str = "values") -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise InputError(f"{name} must be a non-empty 1-D sequence of numbers, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name} contains NaN or infinite values")
    return array


def _check(n_resamples: int, alpha: float) -> None:
    if n_resamples < 100:
        raise InputError(f"n_resamples must be >= 100, got {n_resamples}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}")


def bootstrap_means(values: Sequence[float], seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES) -> np.ndarray:
    """Means of `n_resamples` bootstrap resamples of `values`: shape (n_resamples,)."""
    array = _as_array(values)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, _CHUNK):
        size = min(_CHUNK, n_resamples - start)
        idx = rng.integers(0, array.size, size=(size, array.size))  # (size, n)
        means[start : start + size] = array[idx].mean(axis=1)
    return means


def bootstrap_ci(
    values: Sequence[float], seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) confidence interval of the mean of `values`.

    >>> bootstrap_ci([1.0, 1.0, 1.0])
    (1.0, 1.0)
    """
    _check(n_resamples, alpha)
    means = bootstrap_means(values, seed=seed, n_resamples=n_resamples)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class PairedTest:
    """The difference mean(a) - mean(b) over paired questions, its CI, and a two-sided p-value."""

    delta: float
    ci: tuple[float, float]
    p_value: float
    n: int
    method: str  # "exact sign-flip" or "sign-flip permutation"

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def sign_flip_p_value(differences: Sequence[float], seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES) -> tuple[float, str]:
    """Two-sided p-value of mean(differences) == 0 by flipping the sign of each paired difference.

    Under the null the two arms are exchangeable per question, so each difference is as likely negated.
    Exact over all 2**n flips when that is at most `n_resamples`; otherwise Monte Carlo with the +1 correction.
    """
    d = _as_array(differences, "differences")
    observed = abs(d.mean())
    tolerance = 1e-12 * max(1.0, observed)
    if 2 ** d.size <= n_resamples:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))  # (2**n, n)
        flipped = np.abs(signs @ d) / d.size
        return float(np.mean(flipped >= observed - tolerance)), "exact sign-flip"
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, n_resamples, _CHUNK):
        size = min(_CHUNK, n_resamples - start)
        signs = rng.choice((1.0, -1.0), size=(size, d.size))  # (size, n)
        extreme += int(np.sum(np.abs(signs @ d) / d.size >= observed - tolerance))
    return (extreme + 1) / (n_resamples + 1), "sign-flip permutation"


def paired_test(
    a: Sequence[float],
    b: Sequence[float],
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    alpha: float = 0.05,
) -> PairedTest:
    """Compare two arms on the same questions (a[i] and b[i] score question i).

    Returns delta = mean(a - b), a paired-bootstrap (1 - alpha) CI of delta and a sign-flip p-value.
    """
    _check(n_resamples, alpha)
    x, y = _as_array(a, "a"), _as_array(b, "b")
    if x.size != y.size:
        raise InputError(f"paired samples differ in length: {x.size} vs {y.size}")
    d = x - y
    lo, hi = bootstrap_ci(d, seed=seed, n_resamples=n_resamples, alpha=alpha)
    p_value, method = sign_flip_p_value(d, seed=seed, n_resamples=n_resamples)
    return PairedTest(delta=float(d.mean()), ci=(lo, hi), p_value=p_value, n=int(d.size), method=method)


def detectable_difference(differences: Sequence[float], alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference that a two-sided paired test at `alpha` on this many questions finds with
    probability `power`, at the spread the paired differences show (normal approximation): what a validation split
    of this size can confirm at all. 0 when the differences do not vary; infinite for fewer than two.

    >>> round(detectable_difference([0.5, -0.5] * 50, alpha=0.05), 3)
    0.141
    """
    _check(DEFAULT_RESAMPLES, alpha)
    if not 0 < power < 1:
        raise InputError(f"power must be in (0, 1), got {power}")
    d = _as_array(differences, "differences")
    if d.size < 2:
        return math.inf
    z = NormalDist().inv_cdf
    return float((z(1 - alpha / 2) + z(power)) * d.std(ddof=1) / math.sqrt(d.size))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the input order.

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return [round(float(v), 12) for v in adjusted]
