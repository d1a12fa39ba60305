"""Test helpers: run the real `optbench` command in a subprocess, run a config in this process
through the run spec, read run dirs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from optbench.loggers.jsonl import read_metrics
from optbench.runner.execute import execute
from optbench.runner.loop import Outcome
from optbench.runner.spec import resolve


def run_config(cfg: Any, run_dir: Path, task: str | None = None, optimizer: str | None = None) -> Outcome | None:
    """Run a composed config in this process, as ``optbench run`` would (resolve, then execute)."""
    return execute(resolve(cfg, run_dir, task=task, optimizer=optimizer))


class Interrupted(Exception):
    """Raised by :func:`interrupt_after_checkpoint`: a run dying right after a checkpoint."""


@contextlib.contextmanager
def interrupt_after_checkpoint(step: int) -> Iterator[None]:
    """Inside the block, a run (in this process) dies just after writing its step-``step``
    checkpoint, as a crash would leave it; ``pytest.raises(Interrupted)`` goes around the run."""
    from optbench.runner.loop import Trainer

    original = Trainer.checkpoint

    def checkpoint_then_die(self: Trainer) -> None:
        original(self)
        if self.state.step == step:
            raise Interrupted

    Trainer.checkpoint = checkpoint_then_die
    try:
        yield
    finally:
        Trainer.checkpoint = original


PYTHON_M = (sys.executable, "-m")


def optbench(*args: str, cwd: Path | None = None, check: bool = True,
             runner: Sequence[str] = PYTHON_M) -> subprocess.CompletedProcess:
    """Run `optbench ARGS` as a user would, in a fresh interpreter (``runner -m optbench``:
    python itself, or a launcher such as torchrun that ends in ``-m``)."""
    result = subprocess.run(
        [*runner, "optbench", *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, "COLUMNS": "200"}, timeout=600, check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"optbench {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def optbench_in_process(*args: str) -> subprocess.CompletedProcess:
    """Run `optbench ARGS` in this interpreter (Typer's CliRunner): the same code path as the
    command, without a fresh interpreter's second of imports. For commands that stop before
    training (user mistakes); what needs a clean process (signals, Hydra's run) uses
    :func:`optbench`."""
    from typer.testing import CliRunner

    from optbench.cli import app

    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(["optbench", *args], result.exit_code, result.stdout, result.stderr)


def wait_until(condition: Callable[[], Any], failure: str, timeout: float = 120.0,
               process: subprocess.Popen | None = None) -> None:
    """Poll ``condition`` until it holds; fail with ``failure`` after ``timeout`` seconds, or as
    soon as ``process`` has exited."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert (process is None or process.poll() is None) and time.monotonic() < deadline, failure
        time.sleep(0.02)


def summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def losses(run_dir: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["train/loss"]) for r in read_metrics(run_dir / "metrics.jsonl")
            if "train/loss" in r]


#: the metrics that time a run (clocks, throughput, peak memory): they differ between identical runs
TIMING = ("perf/", "mem/peak_bytes")


def untimed(metrics: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in metrics.items() if not key.startswith(TIMING)}


def metric_lines(run_dir: Path) -> list[dict[str, Any]]:
    """Every line of a run's metrics.jsonl, less its timing."""
    return [untimed(record) for record in read_metrics(run_dir / "metrics.jsonl")]


def made_figure(name: str, cwd: Path, *args: str) -> tuple[Path, str, dict[str, Any]]:
    """Run `optbench figure NAME` at smoke scale; check it wrote PNG, PDF and CSV and that its
    verdict held; return its output dir, what it printed and its verdict.json."""
    out = cwd / "out"
    shown = optbench("figure", name, "--out", str(out), *args, cwd=cwd).stdout
    for suffix in ("png", "pdf", "csv"):
        assert (out / f"{name}.{suffix}").stat().st_size > 1000
    verdict = json.loads((out / "verdict.json").read_text())
    assert "verdict at --scale smoke: held" in shown and verdict["held"], verdict["lines"]
    return out, shown, verdict
