"""A run killed with SIGKILL and started again ends bit-identical to an uninterrupted run: every
metrics line (timing aside), EMA evaluations included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import (
    Interrupted,
    interrupt_after_checkpoint,
    losses,
    metric_lines,
    optbench,
    run_config,
    summary,
    wait_until,
)

from optbench.runner.config import compose
from optbench.runner.run_dir import RunDir

# Log intervals that do not divide the checkpoint interval, so the checkpoint must carry the data
# position, the optimizer state and a half-accumulated loss. The logreg case is a WSD cooldown
# branch warm-started from another run (SOURCES), with an EMA of the weights (eval_ema/*).
LOGREG = ["task.data=synthetic", "task.n=2000", "task.batch_size=64", "optimizer=adam", "optimizer.lr=0.01",
          "train.log_every=7", "logger=none"]
SOURCES = {"logreg": [*LOGREG, "train.steps=1000"]}
CASES = {
    "logreg": [*LOGREG, "schedule=wsd", "train.ema=0.99", "train.steps=4000", "train.checkpoint_every=500"],
    # the LM token stream, with gradient accumulation over two micro-batches
    "llama_tiny": ["task=llama_tiny", "task.micro_batch=8", "optimizer=adamw", "schedule=cosine",
                   "train.steps=60", "train.log_every=7", "train.checkpoint_every=10",
                   "train.eval_every=1000", "logger=none"],
}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_sigkill_then_resume_is_bit_identical(tmp_path, case):
    args, steps = CASES[case], int(next(a for a in CASES[case] if "train.steps" in a).split("=")[1])
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    if case in SOURCES:
        run_config(compose(SOURCES[case]), tmp_path / "source")
        args = [*args, f"train.warm_start.run={tmp_path / 'source'}"]
    process = subprocess.Popen(
        [sys.executable, "-m", "optbench", "run", *args, f"hydra.run.dir={killed}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_until((killed / "checkpoint.pt").exists, "no checkpoint appeared", process=process)
    time.sleep(0.2)  # let it run past the checkpoint, so metrics.jsonl holds lines to drop
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert summary(killed)["status"] == "running"  # it never got to finish
    assert RunDir(killed).status() == "interrupted"
    steps_at_kill = losses(killed)[-1][0]
    assert steps_at_kill < steps

    resumed = optbench("run", *args, f"hydra.run.dir={killed}")
    optbench("run", *args, f"hydra.run.dir={clean}")

    assert "resuming" in resumed.stderr
    assert summary(killed)["status"] == "completed"
    assert metric_lines(killed) == metric_lines(clean)  # every logged line, not just the last
    assert losses(killed)[-1][0] == steps


def test_a_run_killed_after_its_last_checkpoint_resumes_with_its_final_metrics(tmp_path):
    """Killed between the final checkpoint and summary.json: the rerun has no step left to take,
    yet reports the same final metrics as an undisturbed run (they are loop state)."""

    cfg = ["task=logreg", "task.batch_size=32", "logger=none", "train.steps=20", "train.checkpoint_every=10"]
    clean = run_config(compose(cfg), tmp_path / "clean")
    with interrupt_after_checkpoint(20), pytest.raises(Interrupted):
        run_config(compose(cfg), tmp_path / "killed")
    resumed = run_config(compose(cfg), tmp_path / "killed")
    timing = ("perf/", "mem/peak_bytes")
    assert {k: v for k, v in resumed.final.items() if not k.startswith(timing)} == \
        {k: v for k, v in clean.final.items() if not k.startswith(timing)}
