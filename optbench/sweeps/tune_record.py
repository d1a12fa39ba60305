"""``tune.json``: what ``optbench tune`` decided and from which runs, in its output dir.

It names run dirs in the run store; the run dirs stay the source of truth for how each run went.
``optbench compare`` reads it to know each task's metric and target, every trial (for the
learning-rate sensitivity) and each optimizer's winner (for the report).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from optbench.runner.run_dir import read_json, write_json

RECORD = "tune.json"


@dataclass
class Trial:
    overrides: list[str]  # the trial's hyperparameters, as overrides (no seed)
    run_dirs: list[str]  # one per tuning seed
    score: float | None = None  # the mean final metric over the seeds; None until scored
    failed: bool = False
    reason: str | None = None


@dataclass
class OptimizerTuning:
    trials: list[Trial] = field(default_factory=list)
    winner: int | None = None  # its index in ``trials``; None while tuning or when every trial failed
    preset: str | None = None  # the tuned preset written for the winner
    final_run_dirs: list[str] = field(default_factory=list)  # the winner at the final seeds


@dataclass
class TaskTuning:
    overrides: list[str]  # every run of the task: task=..., train.steps=..., ...
    metric: str
    mode: str  # min | max
    target: float | None = None  # the value time-to-target is measured to, when the suite sets one
    optimizers: dict[str, OptimizerTuning] = field(default_factory=dict)
    # each optimizer's search space as tuned: key -> {scale, low, high} or {values} (configs/search)
    search: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class TuneRecord:
    protocol: str
    budget: int  # trials per optimizer and task
    seeds: list[int]  # each trial runs at every one of these; its score is their mean
    final_seeds: list[int]  # the winner runs at these for the report
    suite: str | None = None
    tasks: dict[str, TaskTuning] = field(default_factory=dict)
    sampler_seed: int = 0  # quasirandom's Halton scrambling and Optuna's sampler

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TuneRecord:
        tasks = {}
        for name, task in data.get("tasks", {}).items():
            optimizers = {
                opt: OptimizerTuning(**{**tuning, "trials": [Trial(**t) for t in tuning.get("trials", [])]})
                for opt, tuning in task.get("optimizers", {}).items()
            }
            tasks[name] = TaskTuning(**{**task, "optimizers": optimizers})
        return cls(**{**data, "tasks": tasks})


def read_tune(directory: Path) -> TuneRecord | None:
    try:
        return TuneRecord.from_json(read_json(directory / RECORD))
    except FileNotFoundError:
        return None


def write_tune(directory: Path, record: TuneRecord) -> None:
    write_json(directory / RECORD, record.to_json())
