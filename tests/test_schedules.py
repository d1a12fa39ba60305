"""Learning-rate schedules: closed forms, and their use through LambdaLR."""

from __future__ import annotations

import math

import pytest
import torch

from optbench.errors import OptbenchError
from optbench.schedules import WarmupConstant, WarmupCosine, WarmupLinear


def test_warmup_then_cosine_to_the_floor():
    schedule = WarmupCosine(total_steps=100, warmup_fraction=0.1, floor=0.1)
    assert [schedule(s) for s in (0, 5, 10)] == [0.0, 0.5, 1.0]
    assert schedule(55) == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the decay
    assert schedule(100) == pytest.approx(0.1)
    s = 37
    assert schedule(s) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * (s - 10) / 90)))


def test_linear_and_constant():
    linear = WarmupLinear(total_steps=10, floor=0.0)
    assert [linear(s) for s in (0, 5, 10)] == [1.0, 0.5, 0.0]
    constant = WarmupConstant(total_steps=10, warmup_fraction=0.5)
    assert [constant(s) for s in (0, 1, 5, 9)] == [0.0, 0.2, 1.0, 1.0]


def test_lambda_lr_follows_the_multiplier_and_round_trips():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=2.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(20, 0.25, 0.1))
    lrs = []
    for _ in range(10):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs[:6] == pytest.approx([0.0, 0.4, 0.8, 1.2, 1.6, 2.0])
    restored = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(20, 0.25, 0.1))
    restored.load_state_dict(scheduler.state_dict())
    assert restored.get_last_lr() == scheduler.get_last_lr()


@pytest.mark.parametrize("kwargs", [{"warmup_fraction": 1.0}, {"floor": -0.5}])
def test_bad_settings_are_user_errors(kwargs):
    with pytest.raises(OptbenchError):
        WarmupCosine(total_steps=10, **kwargs)
