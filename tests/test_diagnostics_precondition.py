"""Adam's preconditioner from optimizer state, and the preconditioned operator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optbench.diagnostics.precondition import adam_preconditioner, preconditioned
from optbench.errors import OptbenchError

DTYPE = torch.float64


def _quadratic_step(model: nn.Module, optimizer: torch.optim.Optimizer, seed: int) -> None:
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)
    optimizer.zero_grad()
    model(x).pow(2).mean().backward()
    optimizer.step()


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.8, 0.95), eps=1e-6),
        lambda ps: torch.optim.Adam(ps, lr=1e-2, amsgrad=True),
        lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    ],
    ids=["adam", "amsgrad", "adamw"],
)
def test_adam_preconditioner_is_the_denominator_of_adams_step(make) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(DTYPE)
    params = list(model.parameters())
    optimizer = make(params)
    for seed in range(4):
        _quadratic_step(model, optimizer, seed)
    before = torch.cat([p.detach().reshape(-1) for p in params])
    _quadratic_step(model, optimizer, 99)
    after = torch.cat([p.detach().reshape(-1) for p in params])
    group = optimizer.param_groups[0]
    lr, beta1 = group["lr"], group["betas"][0]
    step = float(optimizer.state[params[0]]["step"])
    m_hat = torch.cat([optimizer.state[p]["exp_avg"].reshape(-1) for p in params]) / (
        1 - beta1**step
    )
    decayed = (
        before * (1 - lr * group["weight_decay"])
        if isinstance(optimizer, torch.optim.AdamW)
        else before
    )
    expected = decayed - lr * m_hat / adam_preconditioner(optimizer, params)
    torch.testing.assert_close(after, expected, rtol=1e-12, atol=1e-14)


def test_adam_preconditioner_needs_adam_state() -> None:
    p = nn.Parameter(torch.ones(3))
    with pytest.raises(OptbenchError, match="no Adam state"):
        adam_preconditioner(torch.optim.Adam([p]), [p])  # no step yet
    sgd = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = torch.ones(3)
    sgd.step()
    with pytest.raises(OptbenchError, match="no Adam state"):
        adam_preconditioner(sgd, [p])


def test_preconditioned_operator_is_symmetrically_scaled() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 6, generator=g, dtype=DTYPE)
    a = a + a.T
    diag = torch.rand(6, generator=g, dtype=DTYPE) + 0.1
    v = torch.randn(6, generator=g, dtype=DTYPE)
    expected = torch.diag(diag.rsqrt()) @ a @ torch.diag(diag.rsqrt()) @ v
    torch.testing.assert_close(preconditioned(lambda x: a @ x, diag)(v), expected)
    with pytest.raises(ValueError, match="positive"):
        preconditioned(lambda x: a @ x, diag - 1)
