"""SIGTERM (SLURM's preemption, time limit, scancel) and SIGINT stop a run after the step in
progress, with a checkpoint at that step; the rerun resumes there and ends bit-identical."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import losses, optbench, summary, wait_until

from optbench.runner.signals import StopRequest

TINY_LM = ["task=llama_tiny", "task.hidden=32", "task.intermediate=64", "task.heads=2", "task.layers=1",
           "task.seq_len=16", "task.sequences_per_step=8", "task.micro_batch=4", "task.eval_tokens=600",
           "optimizer=adamw", "schedule=cosine", "train.steps=3000", "train.log_every=1",
           "train.eval_every=1000", "train.checkpoint_every=1000", "logger=none"]


def _logged(run_dir) -> int:
    metrics = run_dir / "metrics.jsonl"
    return metrics.read_text().count("\n") if metrics.exists() else 0


STEPS = ["train.steps=60"]


@pytest.fixture(scope="module")
def clean_losses(tmp_path_factory):
    """The losses of the run undisturbed."""
    clean = tmp_path_factory.mktemp("clean") / "run"
    optbench("run", *TINY_LM, *STEPS, f"hydra.run.dir={clean}")
    return losses(clean)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_checkpoints_the_step_and_the_rerun_recomputes_nothing(tmp_path, stop, clean_losses):
    steps = STEPS
    stopped = tmp_path / "stopped"
    process = subprocess.Popen([sys.executable, "-m", "optbench", "run", *TINY_LM, *steps,
                                f"hydra.run.dir={stopped}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    at = random.Random(stop).randint(3, 30)  # a step with no checkpoint of its own
    wait_until(lambda: _logged(stopped) > at, "the run did not get going", process=process)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 128 + stop
    recorded = summary(stopped)
    step = recorded["steps"]
    assert recorded["status"] == "interrupted" and f"stopped by {stop.name} after step {step}" in recorded["reason"]
    assert torch.load(stopped / "checkpoint.pt", weights_only=False)["loop"]["step"] == step
    assert f"stopped by {stop.name}" in stderr and "Traceback" not in stderr

    resumed = optbench("run", *TINY_LM, *steps, f"hydra.run.dir={stopped}")
    assert f"from step {step}" in resumed.stderr  # nothing before it is trained again
    assert summary(stopped)["status"] == "completed"
    assert losses(stopped) == clean_losses


def test_a_second_signal_stops_at_once_but_a_duplicate_delivery_does_not(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    request = StopRequest()
    request._handle(signal.SIGTERM, None)
    assert request.signal == signal.SIGTERM and request.name == "SIGTERM"
    now[0] += 0.01
    request._handle(signal.SIGTERM, None)  # SLURM's second delivery of one scancel
    with pytest.raises(KeyboardInterrupt, match="second signal"):
        request._handle(signal.SIGINT, None)
    now[0] += 5
    with pytest.raises(KeyboardInterrupt, match="second signal"):
        request._handle(signal.SIGTERM, None)


def test_a_second_process_is_refused_while_the_first_runs(tmp_path):
    run_dir = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "optbench", "run", *TINY_LM, f"hydra.run.dir={run_dir}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _logged(run_dir) > 2, "the first run did not get going", process=first)
        second = optbench("run", *TINY_LM, f"hydra.run.dir={run_dir}", check=False)
        assert second.returncode == 2
        assert f"{run_dir} is in use by a running process (pid {first.pid} " in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert json.loads((run_dir / "summary.json").read_text())["pid"] == first.pid  # untouched
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
    assert summary(run_dir)["status"] == "interrupted"
