"""One run end to end through the real CLI: its files, determinism, and the run-dir rules."""

from __future__ import annotations

import json

import yaml
from helpers import losses, optbench, summary

METRIC_KEYS = {
    "train/loss", "opt/lr", "opt/grad_norm", "perf/step_seconds", "perf/examples_per_second",
    "mem/param_bytes", "mem/grad_bytes", "mem/optimizer_state_bytes", "mem/peak_bytes",
}


def test_run_writes_the_run_dir(tmp_path):
    run_dir = tmp_path / "D"
    result = optbench("run", "task=logreg", "optimizer=sgd", "train.steps=200", f"hydra.run.dir={run_dir}")

    assert "run completed" in result.stderr  # the summary table
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in records if "train/loss" in r]
    assert [r["step"] for r in logged] == list(range(10, 201, 10))
    assert all(METRIC_KEYS <= r.keys() for r in logged)
    assert [r["step"] for r in records if "eval/loss" in r] == [0, 100, 200]
    assert logged[-1]["train/loss"] < records[0]["eval/loss"]  # it learned something

    final = summary(run_dir)
    assert final["status"] == "completed" and final["steps"] == 200
    assert final["final"]["train/loss"] == logged[-1]["train/loss"]
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["train"]["steps"] == 200 and config["optimizer"]["_target_"] == "torch.optim.SGD"
    assert yaml.safe_load((run_dir / "overrides.yaml").read_text()) == [
        "task=logreg", "optimizer=sgd", "train.steps=200"]  # Hydra keeps hydra.* apart
    env = json.loads((run_dir / "env.json").read_text())
    assert {"python", "packages", "git", "device", "cpu", "command"} <= env.keys()
    assert env["packages"]["torch"]
    assert (run_dir / "checkpoint.pt").exists()
    offline_runs = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline_runs) == 1


def test_same_command_gives_bit_identical_losses(tmp_path):
    args = ["task.data=synthetic", "task.batch_size=32", "optimizer=adam", "train.steps=150", "logger=none"]
    optbench("run", *args, f"hydra.run.dir={tmp_path / 'a'}")
    optbench("run", *args, f"hydra.run.dir={tmp_path / 'b'}")
    first, second = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert len(first) == 15 and first == second


def test_seed_changes_the_data_order_only_for_minibatches(tmp_path):
    args = ["task.data=synthetic", "task.batch_size=32", "train.steps=20", "logger=none"]
    optbench("run", *args, "seed=0", f"hydra.run.dir={tmp_path / 'a'}")
    optbench("run", *args, "seed=1", f"hydra.run.dir={tmp_path / 'b'}")
    assert losses(tmp_path / "a") != losses(tmp_path / "b")


def test_completed_run_is_not_recomputed(tmp_path):
    run_dir = tmp_path / "D"
    args = ["train.steps=30", "logger=none", f"hydra.run.dir={run_dir}"]
    optbench("run", *args)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}

    again = optbench("run", *args)

    assert "already completed, not recomputed" in again.stderr
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_run_dir_of_another_config_is_refused_untouched(tmp_path):
    run_dir = tmp_path / "D"
    optbench("run", "train.steps=30", "logger=none", f"hydra.run.dir={run_dir}")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}

    other = optbench("run", "train.steps=40", "logger=none", f"hydra.run.dir={run_dir}", check=False)

    assert other.returncode == 2
    assert "train.steps: 30 -> 40" in other.stderr and "Traceback" not in other.stderr
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_huge_learning_rate_diverges_cleanly(tmp_path):
    run_dir = tmp_path / "D"
    result = optbench("run", "optimizer.lr=1e6", "task.data=synthetic", "train.steps=100",
                      "logger=none", f"hydra.run.dir={run_dir}")
    final = summary(run_dir)
    assert final["status"] == "diverged"
    assert final["steps"] < 100
    assert "diverged:" in result.stderr and final["reason"] in result.stderr.replace("\n", "")


def test_explosion_past_the_divergence_factor(tmp_path):
    run_dir = tmp_path / "D"
    optbench("run", "task=matrix_sensing", "task.init_scale=0.5", "optimizer.lr=1.0",
             "train.steps=200", "train.log_every=1", "train.divergence_factor=10",
             "logger=none", f"hydra.run.dir={run_dir}")
    final = summary(run_dir)
    assert final["status"] == "diverged"
    assert "exceeds train.divergence_factor=10" in final["reason"]


def test_default_run_dir_is_under_runs_named_by_task_and_optimizer(tmp_path):
    optbench("run", "optimizer=adam", "train.steps=10", "logger=none", cwd=tmp_path)
    (run_dir,) = (tmp_path / "runs").glob("*/*")
    assert run_dir.name.endswith("_logreg_adam")
    assert summary(run_dir)["status"] == "completed"


def test_a_wandb_error_warns_and_the_run_goes_on(tmp_path):
    run_dir = tmp_path / "D"
    result = optbench("run", "train.steps=20", "logger.mode=bogus", f"hydra.run.dir={run_dir}")
    assert "W&B disabled for this run" in result.stderr
    assert summary(run_dir)["status"] == "completed"
