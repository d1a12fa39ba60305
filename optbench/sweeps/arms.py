"""What ``optbench compare`` compares: per task, per optimizer (an *arm*), the runs reported and
every trial tried, gathered from tune dirs (``tune.json``) and from sweep dirs or folders of runs.

- A tune dir names each optimizer's winner re-run at the final seeds: those runs are reported;
  every trial feeds the learning-rate sensitivity. The task's metric, mode and target come from it.
- Elsewhere runs are grouped by (task, optimizer) and then by config less the seed; the best
  config by its mean final metric (:func:`optbench.sweeps.selection.best`) is reported, and every
  config is a trial.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from optbench.contract import EVAL_LOSS
from optbench.errors import OptbenchError
from optbench.runner.run_dir import RunDir
from optbench.runner.target import Mode
from optbench.sweeps.aggregate import Group, group_by_config
from optbench.sweeps.collect import RunRecord, find_runs, lookup, read_run
from optbench.sweeps.selection import best, score
from optbench.sweeps.sensitivity import Point
from optbench.sweeps.tune_record import TaskTuning, read_tune

LR = "optimizer.lr"


@dataclass
class Arm:
    optimizer: str
    runs: list[RunRecord]  # the runs reported: one per seed
    selected: str  # which config they are, and how it was chosen
    trials: list[Point] = field(default_factory=list)


@dataclass
class TaskRuns:
    name: str
    metric: str
    mode: str
    target: float | None  # given by the tune record or --target; None: the baseline's final mean
    target_source: str  # where ``target`` comes from
    arms: dict[str, Arm] = field(default_factory=dict)


def _point(label: str, records: Sequence[RunRecord], metric: str, mode: str) -> Point:
    scored = score(records, metric, mode)
    lr = lookup(records[0].config, LR) if records else None
    return Point(label or "-", float(lr) if isinstance(lr, (int, float)) else None, scored.value,
                 scored.failed, scored.reason)


def runs_of(directory: Path, run_dirs: Sequence[str]) -> list[RunRecord]:
    """The run dirs a tune record names (relative ones from its dir)."""
    return [read_run(RunDir(directory / path)) for path in run_dirs]


def _tuned_task(name: str, directory: Path, task: TaskTuning, metric: str | None, mode: str | None,
                target: float | None) -> TaskRuns:
    metric, mode = metric or task.metric, Mode(mode or task.mode).value
    own = task.target is not None and (metric, mode) == (task.metric, task.mode)
    found = TaskRuns(name, metric, mode, task.target if own else target,
                     "tune.json" if own else ("--target" if target is not None else ""))
    read = {optimizer: [(" ".join(t.overrides), runs_of(directory, t.run_dirs)) for t in tuning.trials]
            for optimizer, tuning in task.optimizers.items()}
    check_metric([r for trials in read.values() for _, records in trials for r in records], metric)
    for optimizer, tuning in task.optimizers.items():
        trials = read[optimizer]
        points = [_point(label, records, metric, mode) for label, records in trials]
        if tuning.winner is None:
            runs, selected = [], "no winner: every trial failed" if tuning.trials else "not tuned yet"
        elif tuning.final_run_dirs:
            runs, selected = runs_of(directory, tuning.final_run_dirs), f"tuned: {trials[tuning.winner][0]}"
        else:
            runs, selected = trials[tuning.winner][1], f"tuned: {trials[tuning.winner][0]} (tuning seeds: no final runs yet)"
        found.arms[optimizer] = Arm(optimizer, runs, selected, points)
    return found


def _label(group: Group) -> str:
    return " ".join(f"{k}={v}" for k, v in group.label.items() if k != "optimizer") or "its only config"


def _swept_task(name: str, records: list[RunRecord], metric: str, mode: str,
                target: float | None) -> TaskRuns:
    check_metric(records, metric)
    found = TaskRuns(name, metric, mode, target, "--target" if target is not None else "")
    by_optimizer: dict[str, list[RunRecord]] = {}
    for record in records:
        by_optimizer.setdefault(record.optimizer or "-", []).append(record)
    for optimizer, mine in by_optimizer.items():
        groups = group_by_config(mine)
        won = best(groups, metric, mode)
        points = [_point(_label(group), group.records, metric, mode) for group in groups]
        runs, selected = ([], "no config completed") if won is None else \
            (won[0].records, f"best of {len(groups)} config(s): {_label(won[0])}")
        found.arms[optimizer] = Arm(optimizer, runs, selected, points)
    return found


def check_metric(records: Sequence[RunRecord], metric: str) -> None:
    """Refuse a metric that no finished run has as a final metric, naming some they have."""
    finals = {key for record in records for key in record.final}
    if records and metric not in finals:
        have = sorted(finals, key=lambda m: (not m.startswith("eval"), m))[:8]
        raise OptbenchError(f"the runs have no final {metric}; metrics they have: {', '.join(have) or 'none'}"
                            " (choose one with --metric)")


def gather(directories: Sequence[Path], metric: str | None, mode: str | None,
           target: float | None) -> list[TaskRuns]:
    """Every task of ``directories``; runs of sweep dirs and run folders are pooled per task."""
    tasks: dict[str, TaskRuns] = {}
    swept: dict[str, list[RunRecord]] = {}
    origin: dict[str, Path] = {}
    for directory in directories:
        if not directory.is_dir():
            raise OptbenchError(f"{directory} is not a directory; give tune dirs, sweep dirs or folders of run dirs")
        record = read_tune(directory)
        if record is not None:
            for name, task in record.tasks.items():
                if name in tasks or name in swept:
                    raise OptbenchError(f"task {name} is in both {origin[name]} and {directory}; compare them apart")
                tasks[name] = _tuned_task(name, directory, task, metric, mode, target)
                origin[name] = directory
            continue
        records = find_runs(directory)
        if not any(r.path is not None for r in records):
            raise OptbenchError(f"{directory} holds no runs; give tune dirs, sweep dirs or folders of run dirs")
        for run in records:
            name = run.task or "-"
            if name in tasks:
                raise OptbenchError(f"task {name} is in both {origin[name]} and {directory}; compare them apart")
            swept.setdefault(name, []).append(run)
            origin.setdefault(name, directory)
    mode = Mode(mode or Mode.min).value
    for name, records in swept.items():
        tasks[name] = _swept_task(name, records, metric or EVAL_LOSS, mode, target)
    return list(tasks.values())
