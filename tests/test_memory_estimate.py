"""`optbench memory`: the meta-device estimate equals what a real optimizer step holds."""

from __future__ import annotations

import pytest
import torch
from conftest import optbench

from optbench.config import compose
from optbench.optimizers.build import build_optimizer
from optbench.runner.build import build_task
from optbench.runner.memory import optimizer_state_bytes, param_bytes, tensor_bytes
from optbench.runner.memory_estimate import estimate

TASKS = {
    "matrix_sensing": ["task.n=12", "task.k=4", "task.r=2"],
    "logreg": ["task.data=synthetic", "task.d=10"],
    "heavy_tail": ["task.classes=12", "task.top=12"],
}
OPTIMIZERS = ["sgd", "adam", "adamw", "adafactor", "amsgrad", "swan", "galore", "muon", "lion",
              "ademamix", "signsgd", "signum"]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_estimate_equals_the_bytes_of_a_real_step(task, optimizer):
    cfg = compose([f"task={task}", *TASKS[task], f"optimizer={optimizer}", "optimizer.rank=2"
                   if optimizer == "galore" else "seed=0", "logger=none"])
    estimated = estimate(cfg)

    real_task = build_task(cfg)
    real_task.prepare(torch.device("cpu"), torch.float32)
    model = real_task.build_model()
    optimizer_ = build_optimizer(cfg.optimizer, model, real_task.param_roles(model))
    batch = next(real_task.train_stream(seed=0))[0]
    real_task.loss(model, batch).backward()
    optimizer_.step()

    assert estimated.weights == param_bytes(model)
    assert estimated.gradients == tensor_bytes(p.grad for p in model.parameters())
    assert estimated.optimizer_states == optimizer_state_bytes(optimizer_)


def test_galore_states_are_a_projector_and_two_low_rank_moments():
    cfg = compose(["task=matrix_sensing", "task.n=12", "task.k=4", "optimizer=galore",
                   "optimizer.rank=2", "logger=none"])
    # one 12×4 matrix (m ≥ n: right projector n×r, moments m×r), fp32, nothing else
    assert estimate(cfg).optimizer_states == 4 * (4 * 2 + 2 * 12 * 2)


def test_swan_holds_no_state_when_every_parameter_is_a_matrix():
    cfg = compose(["task=matrix_sensing", "task.parameterization=asymmetric", "optimizer=swan"])
    assert estimate(cfg).optimizer_states == 0


def test_memory_command_at_the_paper_scale():
    shown = optbench("memory", "task=llama1b", "optimizer=adam", "precision=bf16").stdout
    weights = next(line for line in shown.splitlines() if line.startswith("│ weights "))
    parameters = int(shown.split("(")[1].split(" parameters")[0].replace(",", ""))
    assert f"{2 * parameters:,}" in weights  # bf16 weights
    assert "Adam, published" in shown and "7.80" in shown
