"""Performance profiles across tasks (AlgoPerf, Dahl et al. 2023; docs/references.md §6.1).

On task t, optimizer s's performance ratio is r(t, s) = time(t, s) / min over s' of time(t, s'),
with r = inf for a missed target. Its profile ρ_s(τ) is the fraction of tasks with r <= τ, and
its score (1/(r_max − 1)) ∫_1^{r_max} ρ_s(τ) dτ with r_max = 4: 1 for an optimizer that is fastest
everywhere, 0 for one never within 4× of the fastest. ρ_s is a step function, so the integral is
exact: each task adds r_max − max(r, 1) when r <= r_max, nothing otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

R_MAX = 4.0  # AlgoPerf's integration limit (Dahl et al. 2023; docs/references.md §6.1)


def ratios(times: Mapping[str, float]) -> dict[str, float]:
    """One task's performance ratios from each optimizer's time to target (inf: missed). When
    the fastest time is 0 (the target met at the start), those at 0 have ratio 1, others inf."""
    fastest = min(times.values(), default=math.inf)
    if not math.isfinite(fastest):
        return {s: math.inf for s in times}
    if fastest == 0:
        return {s: 1.0 if t == 0 else math.inf for s, t in times.items()}
    return {s: t / fastest for s, t in times.items()}


def rho(task_ratios: Sequence[float], tau: float) -> float:
    """ρ(τ): the fraction of tasks whose ratio is at most τ."""
    return sum(r <= tau for r in task_ratios) / len(task_ratios)


def score(task_ratios: Sequence[float], r_max: float = R_MAX) -> float:
    """(1/(r_max − 1)) ∫_1^{r_max} ρ(τ) dτ, exactly."""
    area = sum(r_max - max(r, 1.0) for r in task_ratios if r <= r_max)
    return area / (len(task_ratios) * (r_max - 1.0))


def tau_grid(task_ratios: Sequence[float], r_max: float = R_MAX, points: int = 301) -> list[float]:
    """An even grid over [1, r_max] with every ratio in it added, so that each step of ρ shows."""
    even = [1.0 + (r_max - 1.0) * i / (points - 1) for i in range(points)]
    return sorted(set(even) | {r for r in task_ratios if 1.0 <= r <= r_max})
