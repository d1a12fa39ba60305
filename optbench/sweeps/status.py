"""What each job of a sweep is doing, read from the sweep dir and the run dirs it points to."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from optbench.contract import RunStatus
from optbench.runner.run_dir import pid_alive
from optbench.sweeps.collect import RunRecord, sweep_runs
from optbench.sweeps.manifest import Manifest, read_manifest


class DriverState(str, Enum):
    """The process that runs a sweep's jobs."""

    RUNNING = "running"
    FINISHED = "finished"
    GONE = "gone"  # killed before it finished
    UNKNOWN = "unknown"  # on another host: cannot be checked from here

    def __str__(self) -> str:
        return self.value


@dataclass
class SweepStatus:
    manifest: Manifest
    driver: DriverState
    records: list[RunRecord]

    def counts(self) -> dict[RunStatus, int]:
        return {state: n for state in RunStatus if (n := sum(r.status == state for r in self.records))}

    @property
    def active(self) -> bool:
        """Jobs may still change state: some are running, or queued behind a live driver."""
        return any(r.status == RunStatus.RUNNING for r in self.records) or (
            self.driver in (DriverState.RUNNING, DriverState.UNKNOWN)
            and any(r.status == RunStatus.QUEUED for r in self.records))


def _driver_state(manifest: Manifest) -> DriverState:
    if manifest.ended is not None:
        return DriverState.FINISHED
    driver = manifest.driver or {}
    if driver.get("host") != socket.gethostname():
        return DriverState.UNKNOWN if driver else DriverState.RUNNING  # not yet recorded: just detached
    return DriverState.RUNNING if pid_alive(driver.get("pid")) else DriverState.GONE


def _explain(record: RunRecord, driver: DriverState) -> RunRecord:
    """Fill in a reason for the states that have none of their own."""
    if record.status == RunStatus.INTERRUPTED and not record.reason:  # killed: it could not say why
        record.reason = (f"stopped at step {record.steps or 0} without finishing (killed?); "
                         "re-run the sweep to resume it from its checkpoint")
    elif record.status == RunStatus.QUEUED and driver in (DriverState.FINISHED, DriverState.GONE):
        record.reason = "never started: the sweep driver has exited; re-run the sweep to run it"
    return record


def sweep_status(sweep_dir: Path) -> SweepStatus | None:
    """None when ``sweep_dir`` holds no sweep manifest."""
    manifest = read_manifest(sweep_dir)
    if manifest is None:
        return None
    driver = _driver_state(manifest)
    return SweepStatus(manifest, driver, [_explain(r, driver) for r in sweep_runs(sweep_dir, manifest)])
