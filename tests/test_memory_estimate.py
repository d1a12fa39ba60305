"""`optbench memory`: the meta-device estimate equals what a real optimizer step holds."""

from __future__ import annotations

import pytest
from helpers import optbench

from optbench.runner.build import build
from optbench.runner.config import compose
from optbench.runner.memory import optimizer_state_bytes, param_bytes, tensor_bytes
from optbench.runner.spec import resolve
from optbench.tools.memory import estimate

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

    real = build(resolve(cfg))  # on the CPU, in fp32
    batch = next(real.task.train_stream(seed=0))[0]
    real.task.loss(real.model, batch).backward()
    real.optimizer.step()

    assert estimated.weights == param_bytes(real.model)
    assert estimated.gradients == tensor_bytes(p.grad for p in real.model.parameters())
    assert estimated.optimizer_states == optimizer_state_bytes(real.optimizer)


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
