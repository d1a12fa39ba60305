"""Time to target: the first point of a run at which a metric meets a value.

A metric is only known where it is logged (``eval/*`` every ``train.eval_every`` steps,
``train/loss`` every ``train.log_every``), so the crossing is interpolated linearly between the
last logged value that did not meet the target and the first that did: the step, the work
(tokens or examples), the training seconds and the FLOPs at the crossing are each interpolated
with the same fraction. Its error is therefore at most one evaluation interval; the step of the
evaluation that first met it is kept too (``evaluated_step``: a run with ``target.stop`` ends
there). A run whose first evaluation (step 0) already meets the target crosses at step 0.

Cadence: the precision of a crossing is one interval of its metric's cadence, so set
``train.eval_every`` (for ``eval/*`` and ``eval_ema/*``) or ``train.log_every`` (for
``train/loss``, itself a mean over that interval) fine enough for the comparison at hand: two
optimizers whose crossings fall in the same interval are told apart by the interpolation alone.
A run follows its target as it goes (:class:`optbench.runner.loop.LoopState` keeps the last
line with the metric and the crossing, in its checkpoints), so a resumed run records the same
crossing; a warm-started run looks for it from its warm-start evaluation on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from optbench.contract import STEP, TRAIN_SECONDS


class Mode(str, Enum):
    min = "min"  # met when the metric is at most the value (losses, errors)
    max = "max"  # met when it is at least the value (accuracies)


@dataclass(frozen=True)
class Crossing:
    step: float  # interpolated
    work: float | None  # tokens or examples, interpolated (None when the lines hold no work)
    seconds: float | None  # training seconds, interpolated
    evaluated_step: int  # the step of the first logged value that met the target

    def record(self, flops_per_work: float | None) -> dict[str, Any]:
        """The crossing as ``summary.json`` keeps it, with its FLOPs when they are known."""
        flops = flops_per_work * self.work if flops_per_work and self.work is not None else None
        return {**asdict(self), "flops": flops}


def met(value: float, target: float, mode: Mode | str) -> bool:
    if not math.isfinite(value):
        return False
    return value <= target if Mode(mode) == Mode.min else value >= target


def _between(before: float | None, after: float | None, fraction: float) -> float | None:
    if before is None or after is None:
        return after
    return before + fraction * (after - before)


def first_crossing(lines: Iterable[Mapping[str, Any]], metric: str, target: float, mode: Mode | str,
                   work_key: str) -> Crossing | None:
    """Where ``metric`` first meets ``target`` in ``lines`` (metrics.jsonl's records, in step
    order), or None if it never does. ``work_key``: ``tokens`` or ``examples``."""
    previous: Mapping[str, Any] | None = None
    for line in lines:
        value = line.get(metric)
        if value is None:
            continue
        if met(float(value), target, mode):
            fraction = 1.0
            if previous is not None:
                before = float(previous[metric])
                # a non-finite value before cannot be interpolated from: take this line's point
                if math.isfinite(before) and value != before:
                    fraction = (target - before) / (float(value) - before)
            start = previous if previous is not None else line
            return Crossing(
                step=_between(start[STEP], line[STEP], fraction),
                work=_between(start.get(work_key), line.get(work_key), fraction),
                seconds=_between(start.get(TRAIN_SECONDS), line.get(TRAIN_SECONDS), fraction),
                evaluated_step=int(line[STEP]),
            )
        previous = line
    return None


def summary_record(metric: str, value: float, mode: Mode | str, crossing: Crossing | None,
                   flops_per_work: float | None) -> dict[str, Any]:
    """``summary.json``'s ``target``: the target, whether it was reached, and where."""
    record: dict[str, Any] = {"metric": metric, "value": value, "mode": Mode(mode).value,
                              "reached": crossing is not None}
    return {**record, **crossing.record(flops_per_work)} if crossing else record
