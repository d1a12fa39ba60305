"""Which trial wins: a trial is one configuration run at every seed, scored by the mean over its
seeds of a metric's *final* value (at the end of training, not its best intermediate one, as
in "Fantastic Pretraining Optimizers": rankings change while the learning rate decays).

A trial with a seed that diverged, failed, was not finished or ended with a non-finite value
is a failed trial: it scores as the worst possible value, is reported as failed, and never wins.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from optbench.contract import RunStatus
from optbench.errors import OptbenchError
from optbench.runner.target import Mode
from optbench.sweeps.aggregate import Group, final_values
from optbench.sweeps.collect import RunRecord


@dataclass
class Score:
    value: float  # the mean over seeds; inf (min) or -inf (max) for a failed trial
    failed: bool
    reason: str | None = None  # why it failed: the first failing seed's status and reason


def score(records: Sequence[RunRecord], metric: str, mode: Mode | str) -> Score:
    """The score of the trial whose runs (one per seed) are ``records``."""
    worst = math.inf if Mode(mode) == Mode.min else -math.inf
    if not records:
        return Score(worst, True, "no run")
    for record in records:
        if record.status != RunStatus.COMPLETED:
            return Score(worst, True, f"seed {record.seed} {record.status}: {record.reason or ''}".rstrip(": "))
        value = record.final.get(metric)
        if value is None:
            raise OptbenchError(f"{metric} is not a final metric of the run in {record.path}; "
                                f"its final metrics: {', '.join(sorted(record.final))}")
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            return Score(worst, True, f"seed {record.seed} ended with {metric}={value}")
    return Score(statistics.fmean(final_values(records, metric)), False)


def signed(found: Score, mode: Mode | str) -> float:
    """The score with lower better (a failed one is +inf)."""
    return found.value if Mode(mode) == Mode.min else -found.value


def best_index(scores: Sequence[Score], mode: Mode | str) -> int | None:
    """The index of the best score, the first on a tie; None when every one failed."""
    return min((i for i, s in enumerate(scores) if not s.failed), key=lambda i: signed(scores[i], mode), default=None)


def best(groups: Sequence[Group], metric: str, mode: Mode | str) -> tuple[Group, Score] | None:
    """The group (trial) with the best score, the first in order on a tie; None when every
    trial failed."""
    scores = [score(group.records, metric, mode) for group in groups]
    i = best_index(scores, mode)
    return None if i is None else (groups[i], scores[i])
