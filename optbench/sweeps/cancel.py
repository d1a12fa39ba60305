"""Stopping a sweep on purpose (``optbench sweep cancel DIR``).

Its driver and its running jobs get SIGTERM, so each run checkpoints after the step in progress
and records ``interrupted``; the jobs of a SLURM sweep are ``scancel``-ed (SLURM sends them
SIGTERM too). Running the sweep's command again resumes every job where it stopped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from optbench.contract import RunStatus
from optbench.errors import OptbenchError
from optbench.runner.run_dir import RunDir, pid_alive
from optbench.sweeps.collect import sweep_runs
from optbench.sweeps.manifest import Manifest

SLURM_LAUNCHERS = ("slurm", "submitit_slurm")


@dataclass
class Cancelled:
    processes: list[int] = field(default_factory=list)  # signalled on this host: the driver, jobs
    slurm_jobs: list[str] = field(default_factory=list)  # scancel-ed


def _local(host: str | None, pid: int | None) -> bool:
    return host == socket.gethostname() and pid_alive(pid)


def _slurm_jobs(sweep_dir: Path) -> list[str]:
    """The SLURM jobs of the sweep, as submitit names its folders (``.submitit/<job id>``; an
    array's tasks as ``<array id>_<task>``, cancelled through the array)."""
    folders = (sweep_dir / ".submitit").glob("*")
    return sorted({folder.name.split("_")[0] for folder in folders if folder.name[0].isdigit()})


def cancel(sweep_dir: Path, manifest: Manifest) -> Cancelled:
    done = Cancelled()
    driver = manifest.driver or {}
    targets = [driver.get("pid")] if manifest.ended is None and _local(driver.get("host"), driver.get("pid")) else []
    for record in sweep_runs(sweep_dir, manifest):
        summary = RunDir(record.path).read_summary() if record.path else None
        if summary and summary.status == RunStatus.RUNNING and _local(summary.host, summary.pid):
            targets.append(summary.pid)
    for pid in dict.fromkeys(targets):  # the basic launcher runs its jobs in the driver itself
        os.kill(pid, signal.SIGTERM)
        done.processes.append(pid)
    if manifest.launcher in SLURM_LAUNCHERS and (jobs := _slurm_jobs(sweep_dir)):
        try:
            # --quiet: a job that has ended already is no error
            subprocess.run(["scancel", "--quiet", *jobs], check=True, capture_output=True, text=True)
        except FileNotFoundError:
            raise OptbenchError("this sweep's jobs are SLURM jobs, but scancel is not on this "
                                f"machine's PATH; run: scancel {' '.join(jobs)}") from None
        except subprocess.CalledProcessError as err:
            raise OptbenchError(f"scancel {' '.join(jobs)} failed: {err.stderr.strip()}") from None
        done.slurm_jobs = jobs
    return done
