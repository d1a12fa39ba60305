"""A sweep stops when told: killing its detached driver, or `optbench sweep cancel`, stops its
jobs with a checkpoint after their step, and running the sweep again resumes them."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psutil
import torch
from helpers import optbench, optbench_in_process, summary, wait_until

from optbench.contract import RunStatus
from optbench.runner.run_dir import RunDir
from optbench.sweeps.collect import find_runs

SWEEP = ["task=logreg", "task.batch_size=8", "optimizer=sgd,adam", "train.steps=4000", "train.checkpoint_every=500",
         "logger=none", "hydra/launcher=parallel", "hydra.launcher.jobs=2", "hydra.sweep.dir=s"]


def _start_detached(cwd: Path) -> tuple[psutil.Process, list[psutil.Process]]:
    """The driver and its process tree once both jobs are training (started from this process,
    whose cwd is ``cwd``: the driver is a process of its own all the same)."""
    assert optbench_in_process("run", "-m", "--detach", *SWEEP).returncode == 0
    sweep = cwd / "s"

    def training() -> bool:
        records = find_runs(sweep) if (sweep / "jobs").is_dir() else []
        return len(records) == 2 and all(r.status == RunStatus.RUNNING and r.steps for r in records)

    wait_until(training, "the sweep's two jobs did not start training", timeout=120)
    driver = psutil.Process(json.loads((sweep / "manifest.json").read_text())["driver"]["pid"])
    return driver, driver.children(recursive=True)


def _stopped_with_checkpoints(cwd: Path) -> dict[Path, int]:
    """Each job's run dir and the step it stopped at, checked: interrupted by SIGTERM after that
    step, with a checkpoint there."""
    stopped = {}
    for record in find_runs(cwd / "s"):
        recorded = summary(record.path)
        assert recorded["status"] == "interrupted" and recorded["reason"].startswith("stopped by SIGTERM")
        checkpoint = torch.load(RunDir(record.path).checkpoint, weights_only=False)
        assert checkpoint["loop"]["step"] == recorded["steps"]
        stopped[record.path] = recorded["steps"]
    return stopped


def test_a_detached_sweep_killed_or_cancelled_stops_its_jobs_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    driver, tree = _start_detached(tmp_path)
    os.kill(driver.pid, signal.SIGKILL)
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive, f"alive 10 s after the driver was killed: {[p.pid for p in alive]}"
    killed_at = _stopped_with_checkpoints(tmp_path)

    driver, tree = _start_detached(tmp_path)  # resumes both, then is cancelled
    cancelled = optbench_in_process("sweep", "cancel", "s")
    assert "stopping 3 process(es) on this host" in cancelled.stdout  # the driver and two jobs
    _, alive = psutil.wait_procs([driver, *tree], timeout=10)
    assert not alive, f"alive 10 s after the cancel: {[p.pid for p in alive]}"
    log = (tmp_path / "s" / "driver.log").read_text()
    for path, step in killed_at.items():
        assert f"resuming {path} from step {step}" in log  # nothing before the kill trained again
    cancelled_at = _stopped_with_checkpoints(tmp_path)

    rerun = optbench("run", "-m", *SWEEP, cwd=tmp_path)
    for path, step in cancelled_at.items():
        assert f"resuming {path} from step {step}" in rerun.stderr
        assert summary(path)["status"] == "completed"
