"""When runs reach a value: each run's time to target, and the seed-mean curve of a metric.

A run's time to target is what its ``summary.json`` recorded when it ran with the same target
(``target.metric``, ``target.value``, ``target.mode``), and otherwise is recomputed from its
``metrics.jsonl`` the same way (:func:`optbench.runner.target.first_crossing`: linear between the
last evaluation that missed and the first that met it). Runs from before every line carried the
work done and the training clock give the step only.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from optbench.contract import EXAMPLES, STEP, TOKENS
from optbench.loggers.jsonl import read_metrics
from optbench.runner.run_dir import RunDir
from optbench.runner.target import Crossing, Mode, first_crossing

Lines = list[dict[str, Any]]
Curve = tuple[list[float], list[float]]  # (x, metric) at each evaluation


def run_lines(run_dir: Path | None) -> Lines:
    """A run's metrics.jsonl records, or none when it has not logged yet."""
    path = None if run_dir is None else run_dir / "metrics.jsonl"
    return read_metrics(path) if path is not None and path.exists() else []


def work_key_of(lines: Sequence[Mapping[str, Any]]) -> str | None:
    """``tokens`` or ``examples``, whichever the lines count work in; None for runs that logged
    no work (runs from before every line carried it)."""
    return next((key for key in (TOKENS, EXAMPLES) if any(key in line for line in lines)), None)


def recorded(target: Mapping[str, Any] | None, metric: str, value: float, mode: Mode | str) -> bool:
    """Whether a summary's ``target`` record is for this very target."""
    return bool(target) and target.get("metric") == metric and target.get("value") == value \
        and target.get("mode") == Mode(mode).value


def time_to_target(run_dir: Path | None, lines: Lines, metric: str, value: float,
                   mode: Mode | str) -> Crossing | None:
    """:func:`crossing` for the run in ``run_dir``, its summary read here."""
    summary = RunDir(run_dir).read_summary() if run_dir is not None else None
    return crossing(summary.target if summary is not None else None, lines, metric, value, mode)


def crossing(target: Mapping[str, Any] | None, lines: Lines, metric: str, value: float,
             mode: Mode | str) -> Crossing | None:
    """Where a run first met ``metric`` ``mode`` ``value``: its summary's ``target`` record when
    that is of this very target, else recomputed from its metrics ``lines``; None if it never did."""
    if recorded(target, metric, value, mode):
        if not target.get("reached"):
            return None
        return Crossing(**{f.name: target.get(f.name) for f in dataclasses.fields(Crossing)})
    # without a work key in the lines, the crossing's work stays None
    return first_crossing(lines, metric, value, mode, work_key_of(lines) or EXAMPLES)


def points(lines: Lines, metric: str, axis: str) -> dict[int, tuple[float, float]]:
    """Per logged step of ``metric``: (the ``axis`` value, the metric). The work at step 0 is 0
    even where the line does not say so; other lines without the axis are left out."""
    found = {}
    for line in lines:
        if metric not in line:
            continue
        x = line.get(axis, 0 if line[STEP] == 0 else None)
        if x is not None:
            found[int(line[STEP])] = (float(x), float(line[metric]))
    return found


def mean_curve(runs: Sequence[Lines], metric: str, axis: str) -> Curve:
    """The mean over runs of ``metric`` and of ``axis`` at each step that every run logged,
    dropping steps where any run's value is not finite."""
    each = [points(lines, metric, axis) for lines in runs]
    if not each:
        return [], []
    steps = sorted(set.intersection(*(set(p) for p in each)))
    xs, ys = [], []
    for step in steps:
        values = [p[step][1] for p in each]
        if all(math.isfinite(v) for v in values):
            xs.append(statistics.fmean(p[step][0] for p in each))
            ys.append(statistics.fmean(values))
    return xs, ys


def reach(curve: Curve, value: float, mode: Mode | str) -> float | None:
    """The x at which a curve first meets ``value`` (linear between its points), or None."""
    lines = [{STEP: x, "x": x, "y": y} for x, y in zip(*curve)]
    crossing = first_crossing(lines, "y", value, mode, "x")
    return None if crossing is None else crossing.work
