"""A sweep dir's own files.

- ``manifest.json``: written when the sweep starts: its overrides, launcher, sweeper, the jobs
  it plans (when the sweeper knows them up front) and the driver process;
- ``jobs/<num>.json``: written by each job when it starts: its overrides and its run dir in the
  store. A planned job without one is still queued.

The run dirs stay the source of truth for how each job went; these files only say which run
dirs belong to the sweep.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from optbench.runner.run_dir import read_json, write_json

MANIFEST = "manifest.json"
JOBS = "jobs"


@dataclass
class Manifest:
    hydra_args: list[str]  # the overrides given to Hydra, with hydra.sweep.dir made explicit
    launcher: str
    sweeper: str
    planned: list[list[str]] | None  # each job's overrides, in job order; None for adaptive sweepers
    trials: int | None = None  # how many jobs an adaptive sweeper (Optuna) will run
    created: float = field(default_factory=time.time)
    driver: dict[str, Any] | None = None  # host and pid of the process running the sweep
    ended: float | None = None

    def with_driver(self) -> Manifest:
        return replace(self, driver={"host": socket.gethostname(), "pid": os.getpid()})

    @property
    def size(self) -> int | None:
        return len(self.planned) if self.planned is not None else self.trials


@dataclass
class JobEntry:
    num: int
    overrides: list[str]
    run_dir: Path | None  # None while queued


def write_manifest(sweep_dir: Path, manifest: Manifest) -> None:
    write_json(sweep_dir / MANIFEST, asdict(manifest))


def read_manifest(sweep_dir: Path) -> Manifest | None:
    try:
        return Manifest(**read_json(sweep_dir / MANIFEST))
    except FileNotFoundError:
        return None


def register_job(sweep_dir: Path, num: int, overrides: list[str], run_dir: Path, run_id: str) -> None:
    write_json(sweep_dir / JOBS / f"{num}.json",
               {"num": num, "overrides": overrides, "run_dir": str(run_dir), "run_id": run_id})


def is_sweep(directory: Path) -> bool:
    return (directory / MANIFEST).exists() or (directory / JOBS).is_dir()


def jobs(sweep_dir: Path, manifest: Manifest | None) -> list[JobEntry]:
    """Every job of the sweep, started or planned, in job order."""
    started: dict[int, JobEntry] = {}
    for path in (sweep_dir / JOBS).glob("*.json"):
        entry = read_json(path)
        started[entry["num"]] = JobEntry(entry["num"], entry["overrides"], Path(entry["run_dir"]))
    planned = {num: JobEntry(num, overrides, None) for num, overrides in enumerate(manifest.planned if manifest and manifest.planned else [])}
    return [started.get(num) or planned[num] for num in sorted(started.keys() | planned.keys())]
