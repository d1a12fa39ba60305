"""Learning-rate sensitivity: how wide a range of learning rates gives nearly the best result
(as the lr-sensitivity ablations of Semenov et al. 2025, docs/references.md §6.3, plot it).

Each trial (one config, all its seeds) is a point: its ``optimizer.lr`` and its score, the mean
final metric over seeds (:mod:`optbench.sweeps.selection`), failed trials marked. The width is
log10(lr_max / lr_min) over the trials within ``within`` × |best| of the best score: in decades,
0 when only the best is that close, None (n/a) with fewer than two trials with an lr.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from optbench.runner.target import Mode

WITHIN = 0.05  # default: trials within 5% of the best count as "near the best"


@dataclass(frozen=True)
class Point:
    label: str  # the trial's overrides that set it apart
    lr: float | None  # None when its config has no optimizer.lr
    value: float  # its score: the mean final metric over seeds; ±inf when failed
    failed: bool
    reason: str | None = None


def near_best(points: Sequence[Point], mode: Mode | str, within: float = WITHIN) -> list[Point]:
    """The trials that did not fail and score within ``within`` × |best| of the best."""
    scored = [p for p in points if not p.failed and math.isfinite(p.value)]
    if not scored:
        return []
    sign = 1.0 if Mode(mode) == Mode.min else -1.0
    best = min(sign * p.value for p in scored) * sign
    return [p for p in scored if sign * (p.value - best) <= within * abs(best)]


def width_decades(points: Sequence[Point], mode: Mode | str, within: float = WITHIN) -> float | None:
    """log10(lr_max / lr_min) of the near-best trials with a positive lr; None (n/a) with fewer
    than two trials with an lr, or when none of them is near the best."""
    if sum(p.lr is not None for p in points) < 2:
        return None
    rates = [p.lr for p in near_best(points, mode, within) if p.lr is not None and p.lr > 0]
    return math.log10(max(rates) / min(rates)) if rates else None
