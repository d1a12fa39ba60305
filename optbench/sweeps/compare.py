"""``optbench compare``: each optimizer against a baseline, per task, in one table.

Per task and optimizer (one row of compare.csv): the final metric's mean ± 95% CI over seeds;
how many seeds reached the target and their mean steps, work and training seconds to it; the
speedup over the baseline as a work ratio and as a data-equivalent from a power law fitted to the
baseline's curve (:mod:`optbench.sweeps.speedup`); Welch's t-test against the baseline and the
seeds needed for p < 0.01 (:mod:`optbench.sweeps.significance`); the width of the near-best
learning rates (:mod:`optbench.sweeps.sensitivity`). Across tasks, performance profiles on the
chosen clock (:mod:`optbench.sweeps.profiles`).

A task's target is its tune record's, else ``--target``, else the baseline's final mean. A
time to target is the mean over the seeds that reached it, shown beside how many did; the
performance profiles count it as met when at least half the seeds met it (AlgoPerf scores the
median over its studies; with the default target about half the baseline's seeds end short of
their own mean), as missed otherwise. Curves (for the work ratio and the fit) are means over the
completed seeds at each evaluation.

A number that cannot be computed is an :class:`NA` holding the reason, shown in its place.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optbench.contract import STEP, RunStatus
from optbench.errors import OptbenchError
from optbench.runner.target import Mode
from optbench.sweeps import profiles
from optbench.sweeps.aggregate import final_values, mean_ci
from optbench.sweeps.arms import Arm, TaskRuns, gather
from optbench.sweeps.reach import Curve, crossing, mean_curve, reach, run_lines, work_key_of
from optbench.sweeps.sensitivity import WITHIN, Point, near_best, width_decades
from optbench.sweeps.significance import seeds_needed, untestable, welch
from optbench.sweeps.speedup import PowerLaw, data_equivalent, fit_power_law, work_ratio

if TYPE_CHECKING:
    import pandas as pd

CLOCKS = {"seconds": "seconds_to_target", "steps": "steps_to_target", "work": "work_to_target"}
REPORTED = ("Reported runs: a tune dir's winner at its final seeds; elsewhere, per task and optimizer, "
            "the config with the best mean final metric over its seeds (failed configs never win). "
            "Every config tried feeds the learning-rate sensitivity.")


class NA(str):
    """A value that could not be computed; the text says why and stands in its place."""


NOT_REACHED = NA("not reached")
NOT_LOGGED = NA("not logged")  # runs from before metrics.jsonl carried work and training seconds


@dataclass(frozen=True)
class Options:
    baseline: str
    metric: str | None = None  # default: a tune record's, else eval/loss
    mode: str | None = None  # min | max; default: a tune record's, else min
    target: float | None = None
    clock: str = "seconds"
    within: float = WITHIN


def check(options: Options) -> None:
    """Refuse bad options before any run is read."""
    if options.mode is not None and options.mode not in Mode.__members__:
        raise OptbenchError(f"--mode {options.mode} is not a mode; accepted: {', '.join(Mode.__members__)}")
    if options.clock not in CLOCKS:
        raise OptbenchError(f"--clock {options.clock} is not a clock; accepted: {', '.join(CLOCKS)}")
    if not (options.within >= 0 and math.isfinite(options.within)):
        raise OptbenchError(f"--within {options.within} must be a fraction >= 0, e.g. 0.05 for 5% of the best")


@dataclass
class TaskView:
    """What the figures draw for one task."""

    name: str
    metric: str
    mode: str
    axis: str  # tokens, examples or step: the x of the curves and the fit
    target: float | None
    baseline: str
    curves: dict[str, Curve]  # per optimizer, its mean curve over seeds
    fit: PowerLaw | None  # the baseline's curve, fitted (min metrics only)
    trials: dict[str, list[Point]]


@dataclass
class Profile:
    clock: str  # the clock actually used (steps when the runs did not log the one asked for)
    tasks: list[str]
    ratios: dict[str, list[float]]  # per optimizer, its ratio on each task (inf: missed)
    grid: list[float]
    rho: dict[str, list[float]]  # per optimizer, ρ(τ) at each τ of the grid
    scores: dict[str, float]


@dataclass
class Comparison:
    options: Options
    tasks: list[TaskView]
    rows: list[dict[str, Any]]  # compare.csv
    profile: Profile
    sensitivity: list[dict[str, Any]]  # sensitivity.csv
    notes: list[str] = field(default_factory=list)


def _mean_of(values: Sequence[float | None]) -> float | NA:
    """The mean time to target over the seeds that reached it."""
    if not values:
        return NOT_REACHED
    if any(v is None for v in values):
        return NOT_LOGGED
    return statistics.fmean(values)


def _axis(lines: Sequence[list[dict[str, Any]]], task: str, notes: list[str]) -> str:
    keys = {work_key_of(run) for run in lines}
    if len(keys) == 1 and None not in keys:
        return keys.pop()
    if lines:
        notes.append(f"{task}: curves, fit and work ratio in steps (the runs do not all log work units)")
    return STEP


def _data_speedup(fit: PowerLaw | None, mode: str, final: float | None, curve: Curve) -> tuple[Any, Any, Any, str]:
    """(D_base(L), D_opt, speedup, note) of an arm whose final mean is ``final``."""
    if mode != Mode.min.value:
        return NA("n/a: mode max"), NA("n/a"), NA("n/a: mode max"), ""
    if fit is None:
        return NA("no fit"), NA("n/a"), NA("no fit: fewer than 4 baseline points"), ""
    if final is None or not curve[0] or curve[0][-1] <= 0:
        return NA("n/a"), NA("n/a"), NA("no final value"), ""
    found = data_equivalent(fit, final, curve[0][-1])
    speedup = NA(found.note) if found.speedup is None else found.speedup
    return found.baseline_data, curve[0][-1], speedup, found.note


@dataclass(frozen=True)
class Reference:
    """What every optimizer on a task is measured against: the baseline and the target."""

    finals: list[float]  # the baseline's final values, one per completed seed
    final: float | None  # their mean
    curve: Curve  # the baseline's mean curve
    work: float | None  # where that curve first reaches ``final`` (work, or steps)
    fit: PowerLaw | None  # that curve fitted (min metrics only)
    target: float | None
    source: str  # where the target comes from
    axis: str  # the x of the curves: tokens, examples, or step when runs log no work


def _task(task: TaskRuns, options: Options, notes: list[str]) -> tuple[TaskView, list[dict[str, Any]], list[dict[str, Any]]]:
    base = task.arms[options.baseline]
    order = [base, *(arm for name, arm in task.arms.items() if name != options.baseline)]
    lines = {id(r): run_lines(r.path) for arm in order for r in arm.runs}
    completed = {arm.optimizer: [lines[id(r)] for r in arm.runs if r.status == RunStatus.COMPLETED] for arm in order}
    axis = _axis([run for runs in completed.values() for run in runs], task.name, notes)
    curves = {name: mean_curve(runs, task.metric, axis) for name, runs in completed.items()}
    finals = final_values(base.runs, task.metric)
    final = statistics.fmean(finals) if finals else None
    target = task.target if task.target is not None else final
    curve = curves[base.optimizer]
    fit = fit_power_law(*curve) if task.mode == Mode.min.value else None
    reference = Reference(finals, final, curve, None if final is None else reach(curve, final, task.mode), fit,
                          target, task.target_source or "baseline final mean", axis)
    rows, sensitivity = [], []
    for arm in order:
        width = width_decades(arm.trials, task.mode, options.within)
        width_cell = NA("n/a: one trial") if width is None else width
        rows.append(_row(task, arm, options, lines, curves[arm.optimizer], reference, width_cell))
        sensitivity += _sensitivity(task, arm, options, width_cell)
    view = TaskView(task.name, task.metric, task.mode, axis, target, base.optimizer, curves, fit,
                    {arm.optimizer: arm.trials for arm in order})
    return view, rows, sensitivity


def _reaching(task: TaskRuns, arm: Arm, lines: dict[int, Any], target: float | None) -> dict[str, Any]:
    """How many seeds reached the target, and their mean steps, work and seconds to it."""
    if target is None:
        return dict.fromkeys(("reached", "steps_to_target", "work_to_target", "seconds_to_target"), NA("no target"))
    hit = [c for r in arm.runs if (c := crossing(r.target, lines[id(r)], task.metric, target, task.mode))]
    return {"reached": len(hit), "steps_to_target": _mean_of([c.step for c in hit]),
            "work_to_target": _mean_of([c.work for c in hit]), "seconds_to_target": _mean_of([c.seconds for c in hit])}


def _fitted(fit: PowerLaw | None) -> dict[str, Any]:
    names = ("a", "b", "c", "r2", "rmse", "points")
    return {f"fit_{name}": getattr(fit, name) if fit else NA("no fit") for name in names}


def _row(task: TaskRuns, arm: Arm, options: Options, lines: dict[int, Any], curve: Curve,
         reference: Reference, width: float | NA) -> dict[str, Any]:
    """One row of compare.csv; ``width``: the arm's lr-sensitivity width (its cell)."""
    finals = final_values(arm.runs, task.metric)
    estimate = mean_ci(finals) if finals else None
    work = reach(curve, reference.final, task.mode) if reference.final is not None else None
    speedup = work_ratio(reference.work, work)
    data_needed, data_used, data_speedup, data_note = _data_speedup(
        reference.fit, task.mode, estimate.mean if estimate else None, curve)
    test = welch(finals, reference.finals)
    needed = seeds_needed(finals, reference.finals)
    not_tested = NA(untestable(finals, reference.finals) or "")
    one_seed = NA("n/a: < 2 seeds")
    return {
        "task": task.name, "optimizer": arm.optimizer, "baseline": arm.optimizer == options.baseline,
        "runs": arm.selected, "metric": task.metric, "mode": task.mode, "seeds": len(arm.runs),
        "completed": sum(r.status == RunStatus.COMPLETED for r in arm.runs),
        "final_mean": estimate.mean if estimate else NA("no completed run"),
        "final_ci95": one_seed if estimate is None or estimate.half_width is None else estimate.half_width,
        "target": NA("no target") if reference.target is None else reference.target,
        "target_source": reference.source,
        **_reaching(task, arm, lines, reference.target),
        "axis": reference.axis,
        "work_to_baseline_final": NOT_REACHED if work is None else work,
        "work_speedup": NOT_REACHED if speedup is None else speedup,
        **_fitted(reference.fit),
        "baseline_data_at_final": data_needed, "data_used": data_used,
        "data_speedup": data_speedup, "data_speedup_note": data_note,
        "welch_t": test.statistic if test else not_tested, "welch_p": test.p if test else not_tested,
        "seeds_needed_p01": not_tested if needed is None else needed,
        "trials": len(arm.trials), "failed_trials": sum(p.failed for p in arm.trials),
        "lr_width_decades": width,
    }


def _sensitivity(task: TaskRuns, arm: Arm, options: Options, width: float | NA) -> list[dict[str, Any]]:
    near = {id(p) for p in near_best(arm.trials, task.mode, options.within)}
    return [{"task": task.name, "optimizer": arm.optimizer, "trial": p.label,
             "lr": NA("no optimizer.lr") if p.lr is None else p.lr,
             "final_mean": NA("failed") if p.failed else p.value, "failed": p.failed, "reason": p.reason or "",
             "near_best": id(p) in near, "lr_width_decades": width}
            for p in arm.trials]


def _profile_time(row: dict[str, Any], column: str) -> float:
    """An arm's time on the profiles' clock: inf unless at least half its seeds met the target."""
    time, reached = row[column], row["reached"]
    met = isinstance(reached, int) and row["seeds"] and 2 * reached >= row["seeds"]
    return time if met and not isinstance(time, NA) else math.inf


def _profile(rows: list[dict[str, Any]], clock: str, notes: list[str]) -> Profile:
    column = CLOCKS[clock]
    if any(row[column] is NOT_LOGGED for row in rows):
        notes.append(f"performance profiles on steps: some runs do not log {clock} (--clock {clock} asked)")
        clock, column = "steps", CLOCKS["steps"]
    tasks = list(dict.fromkeys(row["task"] for row in rows))
    optimizers = list(dict.fromkeys(row["optimizer"] for row in rows))
    times = {(row["task"], row["optimizer"]): _profile_time(row, column) for row in rows}
    ratios: dict[str, list[float]] = {s: [] for s in optimizers}
    for task in tasks:
        on_task = profiles.ratios({s: times.get((task, s), math.inf) for s in optimizers})
        for s in optimizers:
            ratios[s].append(on_task[s])
    for row in rows:
        row["clock"] = clock
        row["profile_ratio"] = ratios[row["optimizer"]][tasks.index(row["task"])]
    grid = profiles.tau_grid([r for values in ratios.values() for r in values])
    return Profile(clock, tasks, ratios, grid, {s: [profiles.rho(values, tau) for tau in grid] for s, values in ratios.items()},
                   {s: profiles.score(values) for s, values in ratios.items()})


def compare(directories: Sequence[Path], options: Options) -> Comparison:
    """Gather the runs of ``directories`` and compute every number of the report."""
    check(options)
    tasks = gather(directories, options.metric, options.mode, options.target)
    for task in tasks:
        if options.baseline not in task.arms:
            raise OptbenchError(f"baseline {options.baseline} has no runs on task {task.name}; optimizers "
                                f"there: {', '.join(task.arms)} (choose one with --baseline)")
    notes: list[str] = []
    views, rows, sensitivity = [], [], []
    for task in tasks:
        view, task_rows, task_sensitivity = _task(task, options, notes)
        views.append(view)
        rows += task_rows
        sensitivity += task_sensitivity
    profile = _profile(rows, options.clock, notes)
    return Comparison(options, views, rows, profile, sensitivity, notes)


# -- the tables as written: every cell through one formatter, so that the CSV and the report agree


def cell(value: Any) -> str:
    """How a value is written in the CSVs, the HTML report and the terminal."""
    if isinstance(value, str):  # text, and NA's reasons
        return str(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def shown(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows as written to CSV and shown in the report: every cell a string."""
    import pandas as pd

    return pd.DataFrame([{k: cell(v) for k, v in row.items()} for row in rows])


def typed(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows with their types (what Parquet keeps): a value that could not be computed is null."""
    import pandas as pd

    return pd.DataFrame([{k: None if isinstance(v, NA) else v for k, v in row.items()} for row in rows])


def profile_rows(profile: Profile) -> list[dict[str, Any]]:
    """profiles.csv: ρ(τ) per optimizer on the τ grid, with the optimizer's score."""
    return [{"optimizer": s, "clock": profile.clock, "tau": tau, "rho": rho, "score": profile.scores[s]}
            for s in profile.ratios for tau, rho in zip(profile.grid, profile.rho[s])]


def write_tables(comparison: Comparison, out_dir: Path) -> list[Path]:
    """compare.csv, compare.parquet, profiles.csv and sensitivity.csv in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in ("compare.csv", "compare.parquet", "profiles.csv", "sensitivity.csv")]
    shown(comparison.rows).to_csv(paths[0], index=False)
    typed(comparison.rows).to_parquet(paths[1], index=False)
    shown(profile_rows(comparison.profile)).to_csv(paths[2], index=False)
    shown(comparison.sensitivity).to_csv(paths[3], index=False)
    return paths
