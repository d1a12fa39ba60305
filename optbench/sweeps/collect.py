"""Results collection: runs read from their run dirs on disk, never from a launcher's return values.

A sweep dir (one with a manifest) lists its jobs' run dirs in the store; any other directory is
searched for run dirs. Each run becomes a :class:`RunRecord`, and a list of them a tidy table:
one row per run, its config choices and final metrics as columns.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from optbench.contract import TRAIN_LOSS, RunStatus, Summary
from optbench.loggers.jsonl import read_metrics
from optbench.runner.run_dir import RunDir
from optbench.sweeps.manifest import Manifest, is_sweep, jobs, read_manifest

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class RunRecord:
    path: Path | None  # None: a sweep job not started yet
    status: RunStatus
    task: str | None = None
    optimizer: str | None = None
    seed: int | None = None
    steps: int | None = None
    train_loss: float | str | None = None
    wall_seconds: float | None = None
    reason: str | None = None
    run_id: str | None = None
    job: int | None = None  # the job number within its sweep
    overrides: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    final: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] | None = None  # the summary's record of the run's target (target.*)


def read_run(run_dir: RunDir, job: int | None = None, overrides: list[str] | None = None) -> RunRecord:
    read = run_dir.read_summary()
    summary = read or Summary(RunStatus.RUNNING)
    final = summary.final
    steps, loss = summary.steps, final.get(TRAIN_LOSS)
    if steps is None or loss is None:  # unfinished: read what the metrics say so far
        logged = read_metrics(run_dir.metrics) if run_dir.metrics.exists() else []
        if logged:
            steps = logged[-1]["step"] if steps is None else steps
            losses = [r[TRAIN_LOSS] for r in logged if TRAIN_LOSS in r]
            loss = losses[-1] if losses and loss is None else loss
    config = yaml.safe_load(run_dir.config.read_text()) if run_dir.config.exists() else {}
    if overrides is None and run_dir.overrides.exists():
        overrides = yaml.safe_load(run_dir.overrides.read_text())
    return RunRecord(
        path=run_dir.path, status=run_dir.status(read) or RunStatus.RUNNING, task=summary.task,
        optimizer=summary.optimizer, seed=summary.seed, steps=steps, train_loss=loss,
        wall_seconds=summary.wall_seconds, reason=summary.reason, run_id=summary.run_id, job=job, overrides=list(overrides or []), config=config or {},
        final=final, target=summary.target,
    )


def find_runs(root: str | os.PathLike[str]) -> list[RunRecord]:
    """The jobs of the sweep in ``root`` (in job order), or every run dir under it (by path)."""
    root = Path(root)
    if is_sweep(root):
        return sweep_runs(root, read_manifest(root))
    records = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "wandb" and not d.startswith("."))
        if "summary.json" in files or "config.yaml" in files:
            records.append(read_run(RunDir(here)))
    return records


def sweep_runs(sweep_dir: Path, manifest: Manifest | None) -> list[RunRecord]:
    """The jobs of the sweep in ``sweep_dir``, in job order; queued ones have no run dir yet."""
    return [read_run(RunDir(j.run_dir), j.num, j.overrides) if j.run_dir is not None
            else RunRecord(path=None, status=RunStatus.QUEUED, job=j.num, overrides=j.overrides)
            for j in jobs(sweep_dir, manifest)]


def lookup(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def choices(record: RunRecord) -> dict[str, Any]:
    """The run's overrides as columns, typed as in its resolved config (``optimizer.lr`` a float)."""
    row: dict[str, Any] = {}
    for override in record.overrides:
        key, _, text = override.lstrip("+~").partition("=")
        if key.startswith("hydra") or key == "store":
            continue
        value = lookup(record.config, key)
        row[key] = value if isinstance(value, (bool, int, float, str)) else text
    return row


def distinguishing(rows: list[dict[str, Any]]) -> list[str]:
    """The keys whose values differ between ``rows`` (every key when there is only one row)."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    if len(rows) < 2:
        return keys
    return [k for k in keys if len({json.dumps(row.get(k), default=str) for row in rows}) > 1]


def results_frame(records: list[RunRecord]) -> pd.DataFrame:
    """One row per run: job, identity, status, config choices, then every final metric."""
    import pandas as pd

    rows = []
    for r in records:
        row: dict[str, Any] = {"job": r.job, "run_id": r.run_id, "status": r.status.value, "reason": r.reason,
                               "task": r.task, "optimizer": r.optimizer, "seed": r.seed}
        row.update(choices(r))
        row.update(steps=r.steps, wall_seconds=r.wall_seconds, run_dir=str(r.path) if r.path else None)
        row.update(r.final)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty or frame["job"].isna().all():
        frame = frame.drop(columns="job", errors="ignore")
    return frame
