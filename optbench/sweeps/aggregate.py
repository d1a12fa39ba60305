"""Runs grouped by config across seeds: each final metric's mean with a 95% confidence interval.

Runs belong to one group when their configs agree on every semantic key but the seed
(:mod:`optbench.runner.identity`); a group is labelled by the overrides that were given.
The interval is Student's t: mean ± t(0.975, n−1)·s/√n over the completed runs.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optbench.contract import EVAL_LOSS, TRAIN_LOSS, RunStatus
from optbench.runner.identity import semantic
from optbench.sweeps.collect import RunRecord, choices, distinguishing

# the final metrics shown, in this order, when any run of the table has them
METRICS = (TRAIN_LOSS, EVAL_LOSS, "eval/ppl", "eval/acc", "eval/suboptimality", "eval/recovery_error")


@dataclass
class Estimate:
    mean: float
    half_width: float | None  # None with fewer than two values
    n: int


@dataclass
class Group:
    label: dict[str, Any]  # the overrides (but the seed) that set this group apart from the others
    records: list[RunRecord]

    @property
    def completed(self) -> list[RunRecord]:
        return [r for r in self.records if r.status == RunStatus.COMPLETED]

    def estimate(self, metric: str) -> Estimate | None:
        values = final_values(self.records, metric)
        return mean_ci(values) if values else None


def final_values(records: Sequence[RunRecord], metric: str) -> list[float]:
    """``metric``'s final value of each completed run that has a finite one."""
    values = []
    for record in records:
        value = record.final.get(metric)
        if record.status == RunStatus.COMPLETED and isinstance(value, (int, float)) and math.isfinite(value):
            values.append(float(value))
    return values


def mean_ci(values: list[float]) -> Estimate:
    from scipy import stats

    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return Estimate(mean, None, n)
    return Estimate(mean, float(stats.t.ppf(0.975, n - 1)) * statistics.stdev(values) / math.sqrt(n), n)


def group_by_config(records: list[RunRecord]) -> list[Group]:
    """Groups in order of first appearance; runs without a config (not started) are left out."""
    groups: dict[str, Group] = {}
    for record in records:
        if not record.config:
            continue
        config = semantic(record.config)
        config.pop("seed", None)
        key = json.dumps(config, sort_keys=True, default=str)
        label = {k: v for k, v in choices(record).items() if k != "seed"}
        groups.setdefault(key, Group(label, [])).records.append(record)
    keys = distinguishing([g.label for g in groups.values()])
    for group in groups.values():  # the same columns for every group
        group.label = {k: group.label.get(k) for k in keys}
    return list(groups.values())


def metrics_present(records: list[RunRecord]) -> list[str]:
    return [m for m in METRICS if any(m in r.final for r in records)]
