"""Results collection: the runs found under a directory, read from their run dirs on disk."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from optbench.runner.run_dir import RunDir
from optbench.runner.sinks.jsonl import read_metrics


@dataclass
class RunRecord:
    path: Path
    task: str | None
    optimizer: str | None
    seed: int | None
    status: str
    steps: int | None
    train_loss: float | str | None
    wall_seconds: float | None
    reason: str | None


def _record(run_dir: RunDir) -> RunRecord:
    summary = run_dir.read_summary() or {}
    final = summary.get("final") or {}
    steps, loss = summary.get("steps"), final.get("train/loss")
    if steps is None or loss is None:  # unfinished: read what the metrics say so far
        logged = read_metrics(run_dir.metrics) if run_dir.metrics.exists() else []
        if logged:
            steps = logged[-1]["step"] if steps is None else steps
            losses = [r["train/loss"] for r in logged if "train/loss" in r]
            loss = losses[-1] if losses and loss is None else loss
    return RunRecord(
        path=run_dir.path, task=summary.get("task"), optimizer=summary.get("optimizer"),
        seed=summary.get("seed"), status=run_dir.status() or "empty", steps=steps,
        train_loss=loss, wall_seconds=summary.get("wall_seconds"), reason=summary.get("reason"),
    )


def find_runs(root: str | os.PathLike[str]) -> list[RunRecord]:
    """Every run dir (a dir with a config.yaml or summary.json) under ``root``, sorted by path."""
    records = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "wandb" and not d.startswith("."))
        if "summary.json" in files or "config.yaml" in files:
            records.append(_record(RunDir(here)))
    return records
