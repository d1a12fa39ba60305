"""A run's identity outlives its config.yaml: the run id in its summary and checkpoints refuses
a resume under another config, and lets the same config resume."""

from __future__ import annotations

import pytest
from helpers import Interrupted, interrupt_after_checkpoint, losses, optbench, run_config, summary

from optbench.errors import OptbenchError
from optbench.runner.config import compose

RUN = ["task=logreg", "task.data=synthetic", "task.n=256", "task.d=8", "task.batch_size=32", "optimizer=sgd",
       "train.steps=30", "train.log_every=1", "train.checkpoint_every=10", "logger=none"]


@pytest.fixture
def interrupted_without_config(tmp_path):
    run_dir = tmp_path / "run"
    with interrupt_after_checkpoint(20), pytest.raises(Interrupted):
        run_config(compose([*RUN, "optimizer.lr=0.01"]), run_dir)
    (run_dir / "config.yaml").unlink()
    return run_dir


def test_another_config_is_refused(interrupted_without_config):
    run_dir = interrupted_without_config
    refused = optbench("run", *RUN, "optimizer.lr=0.5", f"hydra.run.dir={run_dir}", check=False)
    assert refused.returncode == 2
    assert f"{run_dir} holds a run of another config (run id " in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert summary(run_dir)["status"] == "failed" and summary(run_dir)["steps"] == 20  # untouched


def test_the_checkpoint_alone_refuses_another_config(interrupted_without_config):
    run_dir = interrupted_without_config
    (run_dir / "summary.json").unlink()
    with pytest.raises(OptbenchError, match=r"holds a run of another config \(optimizer.lr: 0.01 -> 0.5\)"):
        run_config(compose([*RUN, "optimizer.lr=0.5"]), run_dir)


def test_the_same_config_resumes_and_gets_its_config_back(interrupted_without_config, tmp_path):
    run_dir = interrupted_without_config
    run_config(compose([*RUN, "optimizer.lr=0.01"]), run_dir)
    run_config(compose([*RUN, "optimizer.lr=0.01"]), tmp_path / "clean")
    assert summary(run_dir)["status"] == "completed"
    assert losses(run_dir) == losses(tmp_path / "clean")
    assert "lr: 0.01" in (run_dir / "config.yaml").read_text()
