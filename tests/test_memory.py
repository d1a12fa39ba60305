"""Memory accounting counts exactly the bytes that tensors hold."""

from __future__ import annotations

import torch

from optbench.runner.memory import optimizer_state_bytes, param_bytes, tensor_bytes


def _model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(30, 20), torch.nn.Tanh(), torch.nn.Linear(20, 1))


def _step(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> None:
    model(torch.randn(8, 30)).sum().backward()
    optimizer.step()


def test_adam_holds_two_moments_and_a_step_counter_per_parameter():
    model = _model()
    optimizer = torch.optim.Adam(model.parameters())
    assert optimizer_state_bytes(optimizer) == 0
    _step(optimizer, model)
    n_tensors = len(list(model.parameters()))
    assert param_bytes(model) == (30 * 20 + 20 + 20 + 1) * 4
    # exp_avg and exp_avg_sq in fp32, plus a 0-d fp32 `step` tensor per parameter
    assert optimizer_state_bytes(optimizer) == 2 * param_bytes(model) + 4 * n_tensors


def test_sgd_without_momentum_holds_nothing_and_with_momentum_one_buffer():
    model = _model()
    plain = torch.optim.SGD(model.parameters(), lr=0.1)
    _step(plain, model)
    assert optimizer_state_bytes(plain) == 0
    heavy_ball = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _step(heavy_ball, model)
    assert optimizer_state_bytes(heavy_ball) == param_bytes(model)


def test_views_of_one_storage_count_once_and_dtypes_count_their_size():
    base = torch.zeros(10, 10, dtype=torch.float64)
    assert tensor_bytes([base, base[0], base.T]) == 800
    assert tensor_bytes([torch.zeros(10, dtype=torch.bfloat16)]) == 20


def test_meta_tensors_are_counted_without_allocating():
    with torch.device("meta"):
        big = torch.empty(1000, 1000)
    assert tensor_bytes([big]) == 4_000_000
