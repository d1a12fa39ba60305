"""Sharpness probes during runs, and of saved checkpoints after the fact."""

from __future__ import annotations

import pytest
import torch
from helpers import Interrupted, interrupt_after_checkpoint, optbench, run_config, summary

from optbench.loggers.jsonl import read_metrics
from optbench.runner.checkpoint import load_checkpoint
from optbench.runner.config import compose
from optbench.tasks.logreg import LogisticRegression


def _closed_form_lambda_max(w: torch.Tensor) -> float:
    """λ_max of (1/n) Σ σ(z)(1 − σ(z)) x xᵀ + λI on the default task's data (breast cancer)."""
    task = LogisticRegression()
    task.prepare(torch.device("cpu"), torch.float64)
    s = torch.sigmoid(task.x @ w)
    hessian = (task.x.T * (s * (1 - s))) @ task.x / len(task.y) + task.l2 * torch.eye(len(w), dtype=w.dtype)
    return torch.linalg.eigvalsh(hessian)[-1].item()


def test_gd_on_logreg_logs_the_closed_form_sharpness_every_10_steps(tmp_path):
    run_dir = tmp_path / "D"
    optbench("run", "task=logreg", "optimizer=sgd", "diagnostics=sharpness", "diagnostics.every=10",
             "train.steps=100", "train.checkpoint_every=10", "train.keep_checkpoints=true",
             "precision=fp64", "logger=none", f"hydra.run.dir={run_dir}")

    probes = {r["step"]: r for r in read_metrics(run_dir / "metrics.jsonl") if "sharpness/lambda_max" in r}
    assert sorted(probes) == list(range(0, 101, 10))
    assert all(r["sharpness/threshold"] == pytest.approx(2 / 0.1) for r in probes.values())
    for step in (10, 50, 100):
        w = load_checkpoint(run_dir / "checkpoints" / f"step_{step}.pt")["model"]["weight"].flatten()
        assert probes[step]["sharpness/lambda_max"] == pytest.approx(_closed_form_lambda_max(w), rel=1e-4)

    # the same curvature, after the fact, from the kept checkpoint
    table = optbench("sharpness", str(run_dir), "--step", "50", "--no-trace").stdout
    row = next(line for line in table.splitlines() if "sharpness/lambda_max" in line)
    assert float(row.split("│")[2]) == pytest.approx(probes[50]["sharpness/lambda_max"], rel=1e-5)
    assert summary(run_dir)["final"]["sharpness/lambda_max"] == probes[100]["sharpness/lambda_max"]


def test_adam_logs_preconditioned_sharpness_against_its_threshold(tmp_path):
    run_dir = tmp_path / "D"
    optbench("run", "optimizer=adam", "optimizer.lr=0.01", "diagnostics=sharpness",
             "diagnostics.every=25", "train.steps=50", "logger=none", f"hydra.run.dir={run_dir}")
    last = [r for r in read_metrics(run_dir / "metrics.jsonl") if "sharpness/lambda_max" in r][-1]
    assert last["sharpness/threshold"] == pytest.approx(38 / 0.01)  # (2 + 2β₁)/((1 − β₁)η)
    assert last["sharpness/preconditioned"] > last["sharpness/lambda_max"]


@pytest.mark.parametrize("method", ["power", "lanczos"])
def test_resume_with_warm_started_probes_is_bit_identical(tmp_path, method):
    # Adam: the preconditioned sharpness has its own warm-start vector in the checkpoint too
    cfg = compose(["task=matrix_sensing", "task.k=3", "task.init_scale=0.3", "diagnostics=sharpness",
                   f"diagnostics.method={method}", "diagnostics.every=3", "train.steps=12",
                   "optimizer=adam", "train.log_every=1", "train.checkpoint_every=6", "logger=none"])
    run_config(cfg, tmp_path / "clean")
    with interrupt_after_checkpoint(6), pytest.raises(Interrupted):
        run_config(cfg, tmp_path / "resumed")
    run_config(cfg, tmp_path / "resumed")

    def sharpness(name):
        return [(r["step"], r["sharpness/lambda_max"], r.get("sharpness/preconditioned"), r["sharpness/hvps"])
                for r in read_metrics(tmp_path / name / "metrics.jsonl") if "sharpness/lambda_max" in r]

    assert len(sharpness("clean")) == 5 and sharpness("resumed") == sharpness("clean")
