"""Learning-rate schedules: closed forms, and their use through LambdaLR."""

from __future__ import annotations

import math

import pytest
import torch

from optbench.errors import OptbenchError
from optbench.schedules import WarmupConstant, WarmupCosine, WarmupLinear, WarmupStableDecay


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


def test_wsd_warms_up_holds_then_decays_linearly_over_the_final_fraction():
    wsd = WarmupStableDecay(total_steps=100, warmup_fraction=0.1, decay_fraction=0.2, floor=0.1)
    assert [wsd(s) for s in (0, 5, 10, 50, 80)] == [0.0, 0.5, 1.0, 1.0, 1.0]  # decay from step 80
    assert wsd(90) == pytest.approx(0.1 + 0.9 * 0.5)
    assert wsd(99) == pytest.approx(0.1 + 0.9 * 0.05)
    assert wsd(100) == pytest.approx(0.1)


def test_wsd_sqrt_cooldown_is_one_minus_the_root_of_its_progress():
    wsd = WarmupStableDecay(total_steps=100, decay_fraction=0.16, floor=0.2, shape="sqrt")  # steps 84..100
    assert [wsd(s) for s in (0, 84)] == [1.0, 1.0]
    assert wsd(88) == pytest.approx(0.2 + 0.8 * (1 - 0.5))  # progress 4/16, sqrt 1/2
    assert wsd(93) == pytest.approx(0.2 + 0.8 * (1 - 0.75))  # progress 9/16
    assert wsd(100) == pytest.approx(0.2)


def test_wsd_decaying_over_every_step_is_the_linear_schedule():
    """The pure cooldown a warm-started branch runs (warmup 0, decay 1)."""
    cooldown, linear = WarmupStableDecay(40, decay_fraction=1.0), WarmupLinear(40)
    assert [cooldown(s) for s in range(41)] == [linear(s) for s in range(41)]


@pytest.mark.parametrize("kwargs", [{"warmup_fraction": 1.0}, {"floor": -0.5}])
def test_bad_settings_are_user_errors(kwargs):
    with pytest.raises(OptbenchError):
        WarmupCosine(total_steps=10, **kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"warmup_fraction": 0.5, "decay_fraction": 0.6}, r"schedule.decay_fraction=0.6 must be in \[0, 1 - "),
    ({"shape": "cosine"}, "schedule.shape=cosine is not a cooldown shape; accepted: linear, sqrt"),
])
def test_bad_wsd_settings_are_user_errors(kwargs, message):
    with pytest.raises(OptbenchError, match=message):
        WarmupStableDecay(total_steps=10, **kwargs)
