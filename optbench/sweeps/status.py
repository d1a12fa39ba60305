"""What each job of a sweep is doing, read from the sweep dir and the run dirs it points to."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from optbench.runner.run_dir import pid_alive
from optbench.sweeps.collect import RunRecord, sweep_runs
from optbench.sweeps.manifest import Manifest, read_manifest

STATES = ("queued", "running", "completed", "diverged", "failed", "interrupted")


@dataclass
class SweepStatus:
    manifest: Manifest
    driver: str  # running | finished | gone (killed before it finished) | unknown (another host)
    records: list[RunRecord]

    def counts(self) -> dict[str, int]:
        return {state: n for state in STATES if (n := sum(r.status == state for r in self.records))}

    @property
    def active(self) -> bool:
        """Jobs may still change state: some are running, or queued behind a live driver."""
        return any(r.status == "running" for r in self.records) or (
            self.driver in ("running", "unknown") and any(r.status == "queued" for r in self.records))


def _driver_state(manifest: Manifest) -> str:
    if manifest.ended is not None:
        return "finished"
    driver = manifest.driver or {}
    if driver.get("host") != socket.gethostname():
        return "unknown" if driver else "running"  # not yet recorded: just detached
    return "running" if pid_alive(driver.get("pid")) else "gone"


def _explain(record: RunRecord, driver: str) -> RunRecord:
    """Fill in a reason for the states that have none of their own."""
    if record.status == "interrupted":
        record.reason = (f"stopped at step {record.steps or 0} without finishing (killed?); "
                         "re-run the sweep to resume it from its checkpoint")
    elif record.status == "queued" and driver in ("finished", "gone"):
        record.reason = "never started: the sweep driver has exited; re-run the sweep to run it"
    return record


def sweep_status(sweep_dir: Path) -> SweepStatus | None:
    """None when ``sweep_dir`` holds no sweep manifest."""
    manifest = read_manifest(sweep_dir)
    if manifest is None:
        return None
    driver = _driver_state(manifest)
    return SweepStatus(manifest, driver, [_explain(r, driver) for r in sweep_runs(sweep_dir, manifest)])
