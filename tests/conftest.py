"""Shared test helpers: run the real `optbench` command in a subprocess, read run dirs."""

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

import pytest
import torch
from slurm_cluster import ClusterUnavailable, slurm_cluster

from optbench.runner.sinks.jsonl import read_metrics


@pytest.fixture(autouse=True, scope="session")
def _offline_environment(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never touch the network or the user's caches."""
    os.environ["OPTBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Many tiny ops: one thread is several times faster than two on a shared, busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


@pytest.fixture(scope="session")
def slurm_env() -> Iterator[dict[str, str]]:
    """The environment (SLURM_CONF) of a throwaway single-node SLURM cluster; skips, with the
    reason, where SLURM cannot run."""
    try:
        with slurm_cluster() as env:
            yield env
    except ClusterUnavailable as exc:
        pytest.skip(str(exc))


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
