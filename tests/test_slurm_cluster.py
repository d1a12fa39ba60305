"""SLURM for real: a throwaway single-node cluster (tests/slurm_cluster.py) runs a batch job,
submitit submits to it, and a detached optbench sweep on it is followed and collected.
Without SLURM these tests skip with the reason; test_sweeps.py covers submitit_local."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
from helpers import optbench
from slurm_cluster import PARTITION


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
