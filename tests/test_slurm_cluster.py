"""SLURM for real: a throwaway single-node cluster (tests/slurm_cluster.py) runs a batch job,
submitit submits to it, and a detached optbench sweep on it is followed and collected.
Without SLURM these tests skip with the reason; test_sweeps.py covers submitit_local."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import losses, optbench, wait_until
from slurm_cluster import PARTITION

from optbench.contract import RunStatus
from optbench.runner.run_dir import pid_alive
from optbench.sweeps.collect import find_runs


@pytest.mark.timeout(120)  # without sacct, submitit would wait forever on a job that died
def test_sbatch_and_submitit(
    slurm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "hi.out"
    done = subprocess.run(
        ["sbatch", "--wait", f"--output={out}", "--wrap", "echo hi"],
        check=False,
        env=slurm_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text().strip() == "hi"

    submitit = pytest.importorskip("submitit")
    monkeypatch.setenv("SLURM_CONF", slurm_env["SLURM_CONF"])  # submitit's sbatch/sacct calls
    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm")
    executor.update_parameters(slurm_partition=PARTITION, timeout_min=2)

    # a local function: cloudpickle ships it by value (the job could not import tests/)
    def square(x: int) -> int:
        return x * x

    job = executor.submit(square, 7)
    assert job.result() == 49


@pytest.mark.timeout(300)
def test_detached_sweep_on_slurm_is_followed_and_collected(
    slurm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_CONF", slurm_env["SLURM_CONF"])
    started = optbench(
        "run", "-m", "--detach", "task=logreg", "optimizer=sgd,adam", "seed=0,1", "train.steps=30",
        "logger=none", "hydra/launcher=slurm", f"hydra.launcher.partition={PARTITION}",
        "hydra.launcher.gpus_per_node=null", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
        "hydra.launcher.timeout_min=5", "hydra.sweep.dir=s", cwd=tmp_path,
    )
    assert "sweep of 4 job(s) started in the background" in started.stdout
    status = optbench("sweep", "status", "s", "--wait", "--interval", "1", cwd=tmp_path)
    assert "(slurm launcher, basic sweeper" in status.stdout
    assert "4 of 4 job(s): 4 completed" in status.stdout, status.stdout
    optbench("sweep", "collect", "s", cwd=tmp_path)
    table = pd.read_parquet(tmp_path / "s" / "results.parquet")
    assert set(table["status"]) == {"completed"} and len(set(table["run_id"])) == 4
    # the jobs ran as SLURM jobs (submitit's folders hold their ids), each in its own run dir
    assert len(list((tmp_path / "s" / ".submitit").glob("*_*/*_log.out"))) == 4


@pytest.mark.timeout(300)
def test_a_cancelled_slurm_job_checkpoints_and_resumes(
    slurm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`optbench sweep cancel` scancels the sweep's SLURM jobs: SLURM sends SIGTERM, and the run
    stops after its step with a checkpoint there; the rerun resumes it."""
    monkeypatch.setenv("SLURM_CONF", slurm_env["SLURM_CONF"])
    sweep = ["task=logreg", "task.batch_size=8", "optimizer=adam", "train.steps=15000",
             "train.checkpoint_every=5000", "logger=none", "hydra/launcher=slurm",
             f"hydra.launcher.partition={PARTITION}", "hydra.launcher.gpus_per_node=null",
             "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=5",
             "hydra.sweep.dir=s"]
    optbench("run", "-m", "--detach", *sweep, cwd=tmp_path)

    def training() -> bool:
        records = find_runs(tmp_path / "s") if (tmp_path / "s" / "jobs").is_dir() else []
        return any(r.status == RunStatus.RUNNING and r.steps for r in records)

    wait_until(training, "no SLURM job started training", timeout=120)
    cancelled = optbench("sweep", "cancel", "s", cwd=tmp_path)
    assert "SLURM job(s)" in cancelled.stdout
    stopped = [r for r in find_runs(tmp_path / "s") if r.status == RunStatus.INTERRUPTED]
    assert stopped and all(r.reason.startswith("stopped by SIGTERM") for r in stopped)
    for record in stopped:
        step = json.loads((record.path / "summary.json").read_text())["steps"]
        assert torch.load(record.path / "checkpoint.pt", weights_only=False)["loop"]["step"] == step

    here = [o for o in sweep if not o.startswith("hydra")]  # the same runs, resumed on this machine
    rerun = optbench("run", "-m", *here, "hydra.sweep.dir=again", cwd=tmp_path)
    optbench("run", "-m", *here, "store=clean", "hydra.sweep.dir=undisturbed", cwd=tmp_path)
    for record in stopped:
        assert f"resuming {record.path} from step" in rerun.stderr
        assert losses(record.path) == losses(tmp_path / "clean" / record.path.name)


@pytest.mark.timeout(300)
def test_a_preempted_slurm_job_checkpoints_requeues_and_completes(
    slurm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGUSR2, SLURM's warning before preemption or the time limit: the run checkpoints after
    its step, submitit requeues the job, and the requeued job resumes it to the end."""
    monkeypatch.setenv("SLURM_CONF", slurm_env["SLURM_CONF"])
    optbench("run", "-m", "--detach", "task=logreg", "task.batch_size=8", "optimizer=sgd", "train.steps=15000",
             "train.checkpoint_every=5000", "logger=none", "hydra/launcher=slurm",
             f"hydra.launcher.partition={PARTITION}", "hydra.launcher.gpus_per_node=null",
             "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=5",
             "hydra.sweep.dir=s", cwd=tmp_path)

    def record():
        records = find_runs(tmp_path / "s") if (tmp_path / "s" / "jobs").is_dir() else []
        return records[0] if records else None

    wait_until(lambda: record() is not None and record().status == RunStatus.RUNNING and record().steps,
               "the SLURM job did not start training", timeout=120)
    job = next(p.name for p in (tmp_path / "s" / ".submitit").iterdir() if p.name[0].isdigit())
    subprocess.run(["scancel", "--signal=USR2", job], check=True, env=slurm_env)
    wait_until(lambda: "stopped by SIGUSR2" in ((record().reason or "") if record() else ""),
               "the run did not stop on SIGUSR2", timeout=60)
    stopped_at = record().steps
    wait_until(lambda: record().status == RunStatus.COMPLETED, "the requeued job did not complete", timeout=240)
    logs = "".join(p.read_text() for p in (tmp_path / "s" / ".submitit").glob("*/*_log.*"))
    assert f"resuming {record().path} from step {stopped_at}" in logs
    # this cluster keeps no accounting, so submitit cannot tell the driver that the requeued job
    # ended: stop the driver, as a user would, rather than leave it waiting after the test
    driver = json.loads((tmp_path / "s" / "manifest.json").read_text())["driver"]["pid"]
    optbench("sweep", "cancel", "s", cwd=tmp_path)
    wait_until(lambda: not pid_alive(driver), "the sweep driver outlived its cancel", timeout=30)
