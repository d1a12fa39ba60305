"""Sweeps through Hydra's multirun, and the runs table."""

from __future__ import annotations

from helpers import optbench, summary

from optbench.sweeps.collect import find_runs


def test_sweep_of_four_runs_and_the_runs_table(tmp_path):
    optbench("run", "-m", "task=logreg", "optimizer=sgd,adam", "optimizer.lr=0.1,0.01",
             "train.steps=20", "hydra.sweep.dir=S", cwd=tmp_path)

    jobs = [r.path for r in find_runs(tmp_path / "S")]
    assert [j.parent for j in jobs] == [tmp_path / "runs" / "store"] * 4  # the jobs run in the store
    assert [summary(j)["status"] for j in jobs] == ["completed"] * 4
    assert [summary(j)["optimizer"] for j in jobs] == ["sgd", "sgd", "adam", "adam"]
    # W&B runs of a sweep are grouped by the sweep, one offline run per job
    assert all(len(list((j / "wandb").glob("offline-run-*"))) == 1 for j in jobs)

    table = optbench("runs", "S", cwd=tmp_path).stdout
    assert "4 run(s)" in table
    for num, job in enumerate(jobs):
        row = next(line for line in table.splitlines() if line.startswith(f"│ {num:>3} "))
        assert "optimizer=" in row and "completed" in row and " 20 " in row
        assert f"{summary(job)['final']['train/loss']:.6g}" in row


def test_a_diverging_job_does_not_stop_the_others(tmp_path):
    result = optbench("run", "-m", "optimizer.lr=1e6,0.1", "task.data=synthetic",
                      "train.steps=50", "logger=none", "hydra.sweep.dir=S", cwd=tmp_path)
    diverged, completed = find_runs(tmp_path / "S")
    assert (diverged.status, completed.status) == ("diverged", "completed")
    assert "diverged" in result.stdout and "completed" in result.stdout


def test_a_bad_value_anywhere_in_a_sweep_stops_it_before_any_job(tmp_path):
    sweep = tmp_path / "S"
    result = optbench("run", "-m", "optimizer.lr=0.1,-1", f"hydra.sweep.dir={sweep}", check=False)
    assert result.returncode == 2
    assert "Invalid learning rate: -1" in result.stderr
    assert not sweep.exists()
