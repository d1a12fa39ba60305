"""Role routing: matrices to the matrix optimizer, the rest to the fallback, as one optimizer."""

from __future__ import annotations

import copy

import torch
from omegaconf import OmegaConf

from optbench.contract import ParamRole
from optbench.runner.build import build_optimizer
from optbench.runner.memory import optimizer_state_bytes

CONFIG = OmegaConf.create({
    "_target_": "torch.optim.SGD", "lr": 0.1, "momentum": 0.9,
    "fallback": {"_target_": "torch.optim.AdamW", "lr": 0.01, "weight_decay": 0.0},
})


def _model() -> tuple[torch.nn.Module, dict[str, ParamRole]]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1))
    roles = {"0.weight": ParamRole.MATRIX, "0.bias": ParamRole.VECTOR,
             "2.weight": ParamRole.HEAD, "2.bias": ParamRole.VECTOR}
    return model, roles


def _train(model, optimizer, steps, scheduler=None):
    torch.manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, 6)
        model(x).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        if scheduler:
            scheduler.step()


def test_router_equals_the_two_optimizers_run_side_by_side():
    model, roles = _model()
    twin = copy.deepcopy(model)
    router = build_optimizer(CONFIG, model, roles)
    assert set(router.parts) == {"matrix", "fallback"}
    sgd = torch.optim.SGD([twin[0].weight], lr=0.1, momentum=0.9)
    adamw = torch.optim.AdamW([twin[2].weight, twin[0].bias, twin[2].bias], lr=0.01, weight_decay=0.0)
    _train(model, router, 5)
    torch.manual_seed(1)
    for _ in range(5):
        twin(torch.randn(16, 6)).square().mean().backward()
        sgd.step(), adamw.step()
        sgd.zero_grad(), adamw.zero_grad()
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.equal(a, b)


def test_schedule_scales_each_part_from_its_own_lr():
    model, roles = _model()
    router = build_optimizer(CONFIG, model, roles)
    scheduler = torch.optim.lr_scheduler.LambdaLR(router, lambda step: 0.5)
    assert [g["lr"] for g in router.parts["matrix"].param_groups] == [0.05]
    assert {g["lr"] for g in router.parts["fallback"].param_groups} == {0.005}
    _train(model, router, 2, scheduler)


def test_state_dict_round_trip_and_memory():
    model, roles = _model()
    router = build_optimizer(CONFIG, model, roles)
    _train(model, router, 3)
    n_fallback = 5 + 5 + 1  # AdamW: two moments per fallback value, plus a step tensor each
    assert optimizer_state_bytes(router) == 4 * 30 + 4 * 2 * n_fallback + 4 * 3
    resumed_model = copy.deepcopy(model)
    resumed = build_optimizer(CONFIG, resumed_model, roles)
    resumed.load_state_dict(copy.deepcopy(router.state_dict()))
    _train(model, router, 3)
    _train(resumed_model, resumed, 3)
    for a, b in zip(model.parameters(), resumed_model.parameters()):
        assert torch.equal(a, b)
