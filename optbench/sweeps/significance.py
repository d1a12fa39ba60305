"""Is a difference in final values between an optimizer and the baseline real (docs/references.md
§6.4)? Welch's t-test over seeds, and how many seeds per arm would make the observed effect
significant at p < 0.01 (modded-nanogpt's bar for a record) with power 0.8."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.01  # two-sided significance level: modded-nanogpt's p < 0.01
POWER = 0.8  # 1 − β: the conventional power of a two-sample design (Cohen 1988)


@dataclass(frozen=True)
class Welch:
    statistic: float
    p: float


def untestable(values: Sequence[float], baseline: Sequence[float]) -> str | None:
    """Why the two arms cannot be tested, or None: fewer than two values in either, or no
    spread at all in both (deterministic runs: every seed ended the same, so the t statistic
    divides by zero)."""
    if len(values) < 2 or len(baseline) < 2:
        return "n/a: < 2 seeds"
    if statistics.variance(values) == 0 and statistics.variance(baseline) == 0:
        return "n/a: no spread over seeds"
    return None


def welch(values: Sequence[float], baseline: Sequence[float]) -> Welch | None:
    """Welch's unequal-variance t-test of ``values`` against ``baseline``
    (scipy.stats.ttest_ind(values, baseline, equal_var=False)); None when :func:`untestable`."""
    import warnings

    from scipy import stats

    if untestable(values, baseline):
        return None
    with warnings.catch_warnings():  # scipy's warning for nearly equal values: the result stands
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        result = stats.ttest_ind(values, baseline, equal_var=False)
    return Welch(float(result.statistic), float(result.pvalue))


def seeds_needed(values: Sequence[float], baseline: Sequence[float], alpha: float = ALPHA,
                 power: float = POWER) -> float | None:
    """Seeds per arm for a two-sided test at level ``alpha`` to detect the observed difference
    of means δ with ``power``, by the normal approximation n = 2(z_{1−α/2} + z_{1−β})²σ²/δ²
    (σ² the mean of the two sample variances), rounded up and at least 2 (a t-test's minimum);
    inf when the means are equal; None when :func:`untestable`."""
    from scipy.stats import norm

    if untestable(values, baseline):
        return None
    delta = statistics.fmean(values) - statistics.fmean(baseline)
    if delta == 0:
        return math.inf
    variance = (statistics.variance(values) + statistics.variance(baseline)) / 2
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return max(2, math.ceil(2 * z**2 * variance / delta**2))
