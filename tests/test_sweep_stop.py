"""A sweep stops when told: killing its driver, or `optbench sweep cancel`, stops its jobs with a
checkpoint after their step, and running the sweep again resumes them."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psutil
import torch
from helpers import optbench, summary, wait_until

from optbench.contract import RunStatus
from optbench.runner.run_dir import RunDir
from optbench.sweeps.collect import find_runs

SWEEP = ["task=logreg", "task.batch_size=8", "optimizer=sgd,adam", "train.steps=8000", "train.checkpoint_every=500",
         "logger=none", "hydra/launcher=parallel", "hydra.launcher.jobs=2", "hydra.sweep.dir=s"]


def _start_detached(cwd: Path) -> tuple[int, list[psutil.Process]]:
    """The driver's pid and its process tree once both jobs are training."""
    optbench("run", "-m", "--detach", *SWEEP, cwd=cwd)
    sweep = cwd / "s"

    def training() -> bool:
        records = find_runs(sweep) if (sweep / "jobs").is_dir() else []
        return len(records) == 2 and all(r.status == RunStatus.RUNNING and r.steps for r in records)

    wait_until(training, "the sweep's two jobs did not start", timeout=120)
    driver = json.loads((sweep / "manifest.json").read_text())["driver"]["pid"]
    return driver, psutil.Process(driver).children(recursive=True)


def _rerun_resumes_every_job(cwd: Path) -> None:
    stopped = {r.path: summary(r.path)["steps"] for r in find_runs(cwd / "s")}
    rerun = optbench("run", "-m", *SWEEP, cwd=cwd)
    for path, step in stopped.items():
        assert f"resuming {path} from step {step}" in rerun.stderr  # nothing before it trained again
        assert summary(path)["status"] == "completed"


def test_sigkill_of_a_detached_driver_stops_its_jobs(tmp_path):
    driver, tree = _start_detached(tmp_path)
    os.kill(driver, signal.SIGKILL)
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive, f"alive 10 s after the driver: {[p.pid for p in alive]}"
    for record in find_runs(tmp_path / "s"):  # each stopped after a step, with a checkpoint there
        recorded = summary(record.path)
        assert recorded["status"] == "interrupted" and recorded["reason"].startswith("stopped by SIGTERM")
        checkpoint = torch.load(RunDir(record.path).checkpoint, weights_only=False)
        assert checkpoint["loop"]["step"] == recorded["steps"]
    _rerun_resumes_every_job(tmp_path)


def test_sweep_cancel_stops_the_driver_and_its_jobs(tmp_path):
    driver, tree = _start_detached(tmp_path)
    cancelled = optbench("sweep", "cancel", "s", cwd=tmp_path)
    assert "stopping 3 process(es) on this host" in cancelled.stdout
    _, alive = psutil.wait_procs([*tree, psutil.Process(driver)], timeout=10)
    assert not alive
    for record in find_runs(tmp_path / "s"):
        assert record.status == RunStatus.INTERRUPTED and record.reason.startswith("stopped by SIGTERM")
    _rerun_resumes_every_job(tmp_path)
