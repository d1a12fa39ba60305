"""Sweeps: run identity and the shared store, the parallel launcher, status, collect, grouping."""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path

import pandas as pd
import pytest
from helpers import optbench, optbench_in_process, summary, wait_until
from scipy import stats

from optbench.errors import OptbenchError
from optbench.runner.identity import run_id, semantic
from optbench.runner.run_dir import RunDir, write_json
from optbench.sweeps.aggregate import group_by_config
from optbench.sweeps.collect import find_runs
from optbench.sweeps.manifest import Manifest, write_manifest
from optbench.sweeps.parallel import plan_slots
from optbench.sweeps.status import sweep_status

CONFIG = {"seed": 0, "optimizer": {"lr": 0.1}, "store": "runs/store", "logger": {"mode": "offline"},
          "train": {"steps": 100, "log_every": 10, "checkpoint_every": 50, "keep_checkpoints": False},
          "objective": {"metric": "train/loss", "penalty": 1e10}}


def _with(config: dict, dotted: str, value: object) -> dict:
    changed = json.loads(json.dumps(config))
    *parents, leaf = dotted.split(".")
    node = changed
    for key in parents:
        node = node[key]
    node[leaf] = value
    return changed


@pytest.mark.parametrize("key, value", [("store", "/elsewhere"), ("logger.mode", "online"),
                                        ("train.log_every", 1), ("train.checkpoint_every", 7),
                                        ("train.keep_checkpoints", True), ("objective.metric", "eval/loss")])
def test_run_identity_ignores_where_and_how_often_a_run_reports(key: str, value: object) -> None:
    assert run_id(_with(CONFIG, key, value)) == run_id(CONFIG)


@pytest.mark.parametrize("key, value", [("seed", 1), ("optimizer.lr", 0.01), ("train.steps", 101)])
def test_run_identity_follows_what_a_run_computes(key: str, value: object) -> None:
    assert run_id(_with(CONFIG, key, value)) != run_id(CONFIG)


def test_semantic_config_keeps_the_rest_untouched() -> None:
    kept = semantic(CONFIG)
    assert kept == {"seed": 0, "optimizer": {"lr": 0.1}, "train": {"steps": 100}}
    assert CONFIG["train"]["log_every"] == 10  # the input is not modified


@pytest.mark.parametrize(("ours", "status"), [("42", "interrupted"), ("43", "running"), (None, "running")])
def test_a_run_of_this_very_slurm_job_was_requeued(tmp_path: Path, monkeypatch, ours, status) -> None:
    """A "running" summary on another host is only known dead when it names the SLURM job this
    process runs in: SLURM requeued it, and the job resumes its own run."""
    run_dir = RunDir(tmp_path)
    write_json(run_dir.summary, {"status": "running", "host": "elsewhere", "pid": 1, "slurm_job": "42"})
    if ours is None:
        monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    else:
        monkeypatch.setenv("SLURM_JOB_ID", ours)
    assert run_dir.status() == status


def test_parallel_slots_give_each_job_its_own_gpus() -> None:
    slots = plan_slots(None, 2, None, gpus=["0", "1", "2", "3"], cpus=16)
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in slots] == ["0,1", "2,3"]
    assert all(s.env["OMP_NUM_THREADS"] == "8" for s in slots)


def test_parallel_slots_on_cpu_share_the_cores() -> None:
    slots = plan_slots(2, 1, None, gpus=[], cpus=2)
    assert [(s.env["CUDA_VISIBLE_DEVICES"], s.threads) for s in slots] == [("", 1), ("", 1)]
    assert len(plan_slots(None, 1, None, gpus=[], cpus=4)) == 4


def test_parallel_slots_refuse_more_gpus_than_visible() -> None:
    with pytest.raises(OptbenchError, match=r"jobs=3 × gpus_per_job=2 needs 6 GPUs; 4 visible"):
        plan_slots(3, 2, None, gpus=["0", "1", "2", "3"], cpus=8)


SWEEP = ["task=logreg", "optimizer=sgd,adam", "seed=0,1", "train.steps=30", "logger=none",
         "hydra/launcher=parallel", "hydra.launcher.jobs=2"]


def test_parallel_sweep_store_status_collect_and_reuse(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the reading commands run in this process, in the sweep's cwd
    first = optbench("run", "-m", *SWEEP, "hydra.sweep.dir=first", cwd=tmp_path)
    store = sorted((tmp_path / "runs" / "store").iterdir())
    assert len(store) == 4 and all(summary(d)["status"] == "completed" for d in store)
    assert "4 run(s)" in first.stdout

    status = optbench_in_process("sweep", "status", "first")
    assert "4 of 4 job(s): 4 completed" in status.stdout and "driver finished" in status.stdout

    assert optbench_in_process("sweep", "collect", "first").returncode == 0
    table = pd.read_parquet(tmp_path / "first" / "results.parquet")
    assert table.equals(pd.read_csv(tmp_path / "first" / "results.csv")[table.columns].astype(table.dtypes))
    assert list(table["job"]) == [0, 1, 2, 3]
    assert list(zip(table["optimizer"], table["seed"])) == [("sgd", 0), ("sgd", 1), ("adam", 0), ("adam", 1)]
    assert set(table["status"]) == {"completed"} and table["train/loss"].notna().all()
    assert sorted(table["run_id"]) == sorted(d.name for d in store)

    # another sweep sharing two of those configs: they are reused, not recomputed
    mtimes = {d.name: (d / "summary.json").stat().st_mtime_ns for d in store}
    second = optbench_in_process("run", "-m", "task=logreg", "optimizer=adam", "seed=1,2", "train.steps=30",
                                 "logger=none", "train.log_every=5", "hydra.sweep.dir=second")
    assert second.stderr.count("already completed, not recomputed") == 1
    assert len(list((tmp_path / "runs" / "store").iterdir())) == 5
    assert {d.name: (d / "summary.json").stat().st_mtime_ns for d in store} == mtimes
    reused = pd.read_parquet(tmp_path / "first" / "results.parquet").set_index(["optimizer", "seed"])
    assert optbench_in_process("sweep", "collect", "second").returncode == 0
    shared = pd.read_csv(tmp_path / "second" / "results.csv").set_index(["optimizer", "seed"])
    assert shared.loc[("adam", 1), "run_id"] == reused.loc[("adam", 1), "run_id"]


def test_status_of_a_sweep_whose_driver_died_before_starting_jobs(tmp_path: Path) -> None:
    write_manifest(tmp_path, Manifest(hydra_args=["seed=0,1"], launcher="basic", sweeper="basic",
                                      planned=[["seed=0"], ["seed=1"]],
                                      driver={"host": os.uname().nodename, "pid": 2**22 + 1}))
    status = sweep_status(tmp_path)
    assert status.driver == "gone" and not status.active
    assert [(r.job, r.status) for r in status.records] == [(0, "queued"), (1, "queued")]
    assert "the sweep driver has exited; re-run the sweep" in status.records[0].reason


def test_sweep_commands_name_a_wrong_directory(tmp_path: Path) -> None:
    result = optbench_in_process("sweep", "status", str(tmp_path))
    assert result.returncode == 2
    assert "is not a sweep dir (no manifest.json)" in result.stderr
    assert "Traceback" not in result.stderr
    result = optbench_in_process("sweep", "collect", str(tmp_path / "nope"))
    assert result.returncode == 2 and "is not a directory" in result.stderr


def test_detach_needs_a_sweep(tmp_path: Path) -> None:
    result = optbench_in_process("run", "--detach", "train.steps=5")
    assert result.returncode == 2 and "--detach is for sweeps: add -m" in result.stderr


def test_diverged_and_completed_jobs_both_recorded(tmp_path: Path) -> None:
    result = optbench("run", "-m", "task=logreg", "optimizer.lr=0.1,1e6", "train.steps=40",
                      "logger=none", "train.log_every=1", "hydra.sweep.dir=s", cwd=tmp_path)
    assert result.returncode == 0  # a diverged run is a result, not a failure
    status = sweep_status(tmp_path / "s")
    assert [r.status for r in status.records] == ["completed", "diverged"]
    assert "exceeds train.divergence_factor" in status.records[1].reason or "inf" in status.records[1].reason


def test_runs_grouped_by_config_with_a_t_interval_over_seeds(tmp_path: Path) -> None:
    optbench("run", "-m", "task=logreg", "task.batch_size=32", "optimizer=sgd", "optimizer.lr=0.1,0.3",
             "seed=0,1,2", "train.steps=40", "logger=none", "hydra.sweep.dir=s", cwd=tmp_path)
    groups = group_by_config(find_runs(tmp_path / "s"))
    assert [g.label for g in groups] == [{"optimizer.lr": 0.1}, {"optimizer.lr": 0.3}]
    for group in groups:
        losses = [summary(r.path)["final"]["train/loss"] for r in group.records]
        assert len(set(losses)) == 3  # the seeds differ (minibatch order)
        estimate = group.estimate("train/loss")
        half = stats.t.ppf(0.975, 2) * statistics.stdev(losses) / math.sqrt(3)
        assert estimate.n == 3 and estimate.mean == pytest.approx(statistics.fmean(losses))
        assert estimate.half_width == pytest.approx(half)
    table = optbench("runs", "s", "--group", cwd=tmp_path).stdout
    assert "2 config(s), mean ± 95% CI over seeds" in table and "3/3" in table
    mean = groups[0].estimate("train/loss")
    assert f"{mean.mean:.4g} ± {mean.half_width:.2g}" in table


KILLABLE = ["task=logreg", "task.batch_size=8", "optimizer=sgd,adam", "seed=0,1", "train.steps=1500",
            "train.checkpoint_every=100", "logger=none", "hydra/launcher=parallel", "hydra.launcher.jobs=2"]
TIMING = ("wall_seconds", "run_dir", "mem/peak_bytes")


def _deterministic(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=[c for c in table.columns if c in TIMING or c.startswith("perf/")])


@pytest.mark.slow
def test_killed_sweep_reruns_to_the_undisturbed_result(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    import psutil

    disturbed, undisturbed = tmp_path / "disturbed", tmp_path / "undisturbed"
    disturbed.mkdir()
    driver = subprocess.Popen([sys.executable, "-m", "optbench", "run", "-m", *KILLABLE], cwd=disturbed,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = disturbed / "runs" / "store"

    def runs(status: str) -> list[Path]:
        return [d for d in store.glob("*") if RunDir(d).status() == status]

    def victim() -> Path | None:  # a running job past its first checkpoint
        return next((d for d in runs("running") if (d / "checkpoint.pt").exists()), None)

    wait_until(lambda: runs("completed") and victim() is not None, "no run completed while another ran")
    job = victim()
    tree = psutil.Process(driver.pid).children(recursive=True)  # the fork server and the jobs
    os.kill(summary(job)["pid"], signal.SIGKILL)
    driver.kill()
    driver.wait()
    # the driver's other job went with it, stopping after its step with a checkpoint
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive, f"alive 10 s after the driver: {[p.pid for p in alive]}"
    assert not runs("running")
    stopped = [d for d in runs("interrupted") if d != job]
    assert all(summary(d)["reason"].startswith("stopped by SIGTERM") for d in stopped)
    finished = {d.name: (d / "metrics.jsonl").read_bytes() for d in runs("completed")}
    assert finished and len(finished) < 4

    rerun = optbench("run", "-m", *KILLABLE, cwd=disturbed)
    assert rerun.stderr.count("already completed, not recomputed") == len(finished)
    assert f"resuming {job} from step" in rerun.stderr
    assert {name: (store / name / "metrics.jsonl").read_bytes() for name in finished} == finished

    undisturbed.mkdir()
    optbench("run", "-m", *KILLABLE, cwd=undisturbed)
    tables = []
    for root in (disturbed, undisturbed):
        sweep = max((root / "runs" / "multirun").glob("*/*"))
        assert optbench_in_process("sweep", "collect", str(sweep)).returncode == 0
        tables.append(_deterministic(pd.read_parquet(sweep / "results.parquet")))
    assert (tables[0]["status"] == "completed").all() and len(tables[0]) == 4
    pd.testing.assert_frame_equal(tables[0], tables[1])


def test_optuna_study_survives_diverging_trials_and_reports_the_best(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the study runs its trials in this process (the basic launcher)
    result = optbench_in_process("run", "-m", "task=logreg", "optimizer=sgd", "optimizer.lr=tag(log,interval(0.01,1000))",
                                 "hydra/sweeper=optuna", "hydra.sweeper.n_trials=8", "hydra.sweeper.sampler.seed=0",
                                 "train.steps=100", "logger=none", "hydra.sweep.dir=s")
    assert result.returncode == 0, result.stderr
    records = find_runs(tmp_path / "s")
    statuses = [r.status for r in records]
    assert len(records) == 8 and "diverged" in statuses and set(statuses) <= {"completed", "diverged"}
    best = min((r for r in records if r.status == "completed"), key=lambda r: r.final["train/loss"])
    lr = next(o for o in best.overrides if o.startswith("optimizer.lr=")).split("=")[1]
    assert f"best trial: optimizer.lr={lr} -> {best.final['train/loss']:.6g}" in result.stdout


def test_submitit_local_sweep_detached_then_followed_and_collected(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the commands run in this process; the driver and jobs in their own
    started = optbench_in_process("run", "-m", "--detach", "task=logreg", "optimizer=sgd,adam", "train.steps=30",
                                  "logger=none", "hydra/launcher=submitit_local", "hydra.sweep.dir=s")
    assert "sweep of 2 job(s) started in the background" in started.stdout
    status = optbench_in_process("sweep", "status", "s", "--wait", "--interval", "0.2")
    assert "2 of 2 job(s): 2 completed" in status.stdout
    assert optbench_in_process("sweep", "collect", "s").returncode == 0
    table = pd.read_csv(tmp_path / "s" / "results.csv")
    assert list(table["optimizer"]) == ["sgd", "adam"] and set(table["status"]) == {"completed"}
    assert "Submitit 'local' sweep output dir" in (tmp_path / "s" / "driver.log").read_text()


def test_wandb_runs_grouped_by_sweep_with_job_type_and_tags(tmp_path: Path, monkeypatch) -> None:
    import wandb

    from optbench.runner.config import compose
    from optbench.runner.execute import _sinks
    from optbench.runner.spec import SweepJob, resolve

    calls = []
    monkeypatch.setattr(wandb, "init", lambda **kwargs: calls.append(kwargs))
    cfg = compose(["task=logreg", "optimizer=adam", "logger.tags=[mine]"])
    sweep = SweepJob(tmp_path / "multirun" / "2026-11-23" / "10-00-00", 0)
    _sinks(resolve(cfg, tmp_path, task="logreg", optimizer="adam", name="optimizer=adam", sweep=sweep), 0, False)
    assert calls[0]["group"] == "2026-11-23/10-00-00"
    assert calls[0]["job_type"] == "adam" and calls[0]["tags"] == ["mine", "logreg", "adam"]


def test_a_job_that_raises_is_recorded_and_the_others_go_on(tmp_path: Path, monkeypatch, capsys) -> None:
    from optbench.runner.loop import Trainer
    from optbench.sweeps import launch

    original = Trainer._step

    def step(self: Trainer, measure: bool) -> dict:
        if self.cfg.seed == 1 and self.state.step == 5:
            raise RuntimeError("boom at step 5")
        return original(self, measure)

    monkeypatch.setattr(Trainer, "_step", step)
    launch.launch(["--multirun", "task=logreg", "seed=0,1,2", "train.steps=10", "logger=none",
                   f"hydra.sweep.dir={tmp_path / 's'}", f"store={tmp_path / 'store'}"])
    records = find_runs(tmp_path / "s")
    assert [r.status for r in records] == ["completed", "failed", "completed"]
    assert records[1].reason == "RuntimeError: boom at step 5" and records[1].steps == 5
    assert "boom at step 5" in capsys.readouterr().err  # a bug keeps its traceback
