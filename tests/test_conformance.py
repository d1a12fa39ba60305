"""The conformance suite: every optimizer config on every small task, through the real runner.

For each pair: the loss falls, a run interrupted after a checkpoint and started again ends
bit-identical to an uninterrupted one, and the optimizer's state_dict round-trips.
"""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import Interrupted, interrupt_after_checkpoint, run_config

from optbench.contract import RunStatus, needs_create_graph
from optbench.loggers.jsonl import read_metrics
from optbench.runner.build import build_optimizer
from optbench.runner.config import compose, config_dir
from optbench.runner.run_dir import RunDir

# every optimizer config, plus zoo optimizers that need more from the loop: a backward graph
# (AdaHessian) and train/eval modes (Schedule-Free)
OPTIMIZERS = sorted(p.stem for p in (config_dir() / "optimizer").glob("*.yaml")) + [
    "zoo optimizer.name=adahessian optimizer.lr=0.01", "zoo optimizer.name=schedulefreeadamw"]
SMALL_TASKS = {
    "logreg": ["task.data=synthetic", "task.n=256", "task.d=8", "task.batch_size=32"],
    "matrix_sensing": ["task.n=8", "task.k=3", "task.m=200", "task.init_scale=0.3"],
    "heavy_tail": ["task.classes=16", "task.top=16", "task.batch_size=16"],  # 53 examples, Zipf
    # a small conv net (4-D kernels as matrices) on generated CIFAR-format images
    "cifar10": ["task.data=synthetic", "task.model=cnn", "task.width=8", "task.synthetic_train=256",
                "task.synthetic_test=64", "task.batch_size=64"],
    # a one-layer LLaMA, two micro-batches per step (gradient accumulation)
    "llama_tiny": ["task.hidden=32", "task.intermediate=64", "task.heads=2", "task.layers=1",
                   "task.seq_len=16", "task.sequences_per_step=8", "task.micro_batch=4",
                   "task.eval_tokens=600", "task.data.states=16"],
}
STEPS = 12


def _run(run_dir, optimizer, task, steps=STEPS):
    cfg = compose([f"task={task}", f"optimizer={optimizer.split()[0]}", *optimizer.split()[1:],
                   *SMALL_TASKS[task], "logger=none",
                   f"train.steps={steps}", "train.log_every=1", "train.checkpoint_every=4"])
    return run_config(cfg, run_dir, task, optimizer.split()[0])


def _losses(run_dir):
    return [r["train/loss"] for r in read_metrics(run_dir / "metrics.jsonl") if "train/loss" in r]


@pytest.mark.parametrize("task", SMALL_TASKS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_optimizer_on_task(tmp_path, optimizer, task):
    clean = tmp_path / "clean"
    outcome = _run(clean, optimizer, task)
    assert outcome.status == RunStatus.COMPLETED
    first_eval = read_metrics(clean / "metrics.jsonl")[0]["eval/loss"]
    assert outcome.final["eval/loss"] < first_eval, "the loss did not fall"

    # interrupt right after the step-8 checkpoint, then start the same run again
    interrupted = tmp_path / "interrupted"
    with interrupt_after_checkpoint(8), pytest.raises(Interrupted):
        _run(interrupted, optimizer, task)
    assert RunDir(interrupted).status() == RunStatus.FAILED
    _run(interrupted, optimizer, task)
    assert _losses(interrupted) == _losses(clean)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_state_dict_round_trip(optimizer):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    roles = {"0.weight": "matrix", "0.bias": "vector", "2.weight": "head", "2.bias": "vector"}
    cfg = compose([f"optimizer={optimizer.split()[0]}", *optimizer.split()[1:]]).optimizer
    first = build_optimizer(cfg, model, roles)
    twin = copy.deepcopy(model)

    def steps(m, opt, n):
        torch.manual_seed(1)  # AdaHessian draws its Hutchinson probes from the global RNG
        for _ in range(n):
            m(torch.ones(3, 6)).square().sum().backward(create_graph=needs_create_graph(opt))
            opt.step()
            opt.zero_grad()

    steps(model, first, 3)
    twin.load_state_dict(model.state_dict())
    second = build_optimizer(cfg, twin, roles)
    second.load_state_dict(copy.deepcopy(first.state_dict()))
    steps(model, first, 3)
    steps(twin, second, 3)
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.equal(a, b)
