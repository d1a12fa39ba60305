"""Matrix sensing: measurements, parameterisations, and GD recovery at k = r."""

from __future__ import annotations

import pytest
import torch
from helpers import optbench, summary

from optbench.errors import OptbenchError
from optbench.tasks.matrix_sensing import MatrixSensing


def _prepared(**kwargs) -> MatrixSensing:
    task = MatrixSensing(**kwargs)
    task.prepare(torch.device("cpu"), torch.float64)
    return task


def test_target_is_psd_with_the_requested_spectrum():
    task = _prepared(n=12, r=3, k=3, condition=4.0)
    eigenvalues = torch.linalg.eigvalsh(task.target).flip(0)
    torch.testing.assert_close(eigenvalues[:3], torch.tensor([1.0, 0.625, 0.25], dtype=torch.float64))
    assert eigenvalues[3:].abs().max() < 1e-12


def test_measured_loss_estimates_the_population_loss():
    """E⟨A, Δ⟩² = ‖Δ‖²_F for Gaussian A: the measured loss concentrates on the population one."""
    task = _prepared(n=8, r=2, k=3, m=40_000)
    model = task.build_model().double()
    measured = task.loss(model, task.sensing).item()
    population = task.loss(model, None).item()
    assert measured == pytest.approx(population, rel=0.03)


def test_measurements_are_exact_at_the_truth():
    task = _prepared(n=6, r=2, m=50)
    a, y = task.sensing
    torch.testing.assert_close(a @ task.target.flatten(), y)


@pytest.mark.parametrize("parameterization, count", [("symmetric", 1), ("asymmetric", 2)])
def test_parameterisations(parameterization, count):
    task = _prepared(n=5, r=1, k=2, parameterization=parameterization)
    model = task.build_model()
    assert len(list(model.parameters())) == count
    assert all(role.value == "matrix" for role in task.param_roles(model).values())
    assert model().shape == (5, 5)


def test_search_rank_below_true_rank_is_refused():
    with pytest.raises(OptbenchError, match="task.k=1 is below task.r=2"):
        MatrixSensing(r=2, k=1)


@pytest.mark.parametrize("m", ["null", "400"])
def test_gradient_descent_recovers_at_exact_rank(tmp_path, m):
    run_dir = tmp_path / "D"
    optbench("run", "task=matrix_sensing", "task.k=2", "task.r=2", f"task.m={m}", "optimizer=sgd",
             "optimizer.lr=0.2", "train.steps=400", "logger=none", f"hydra.run.dir={run_dir}")
    assert summary(run_dir)["final"]["eval/recovery_error"] < 1e-4
