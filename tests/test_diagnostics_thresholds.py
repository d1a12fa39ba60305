"""Stability thresholds: the formulas, and that torch's optimizers really turn unstable there."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from optbench.diagnostics.thresholds import stability_threshold


def group(**hyper: Any) -> dict[str, Any]:
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], **hyper).param_groups[0]


@pytest.mark.parametrize(
    ("optimizer", "hyper", "value", "preconditioned"),
    [
        (torch.optim.SGD, {"lr": 0.1}, 20.0, False),
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}, 38.0, False),
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}, 76.0, False),
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}, 38.0 / 2.8, False),
        (torch.optim.SGD, {"lr": 0.1, "weight_decay": 0.5}, 19.5, False),
        (torch.optim.Adam, {"lr": 0.01}, 3800.0, True),
        (torch.optim.AdamW, {"lr": 0.01, "betas": (0.5, 0.9)}, 600.0, True),
        ("adam", {"lr": 1.0, "betas": (0.9, 0.999)}, 38.0, True),
        ("SGD", {"lr": 2.0}, 1.0, False),
    ],
)
def test_threshold_formulas(optimizer, hyper: dict, value: float, preconditioned: bool) -> None:
    if isinstance(optimizer, type):
        hyper = optimizer([torch.zeros(1, requires_grad=True)], **hyper).param_groups[0]
    threshold = stability_threshold(optimizer, hyper)
    assert threshold is not None
    assert threshold.value == pytest.approx(value)
    assert threshold.preconditioned is preconditioned


def test_unknown_cases_have_no_threshold() -> None:
    class MySGD(torch.optim.SGD):
        pass

    assert stability_threshold(torch.optim.RMSprop, {"lr": 0.1}) is None
    assert stability_threshold(MySGD, group(lr=0.1)) is None
    assert stability_threshold("lion", {"lr": 0.1}) is None
    assert stability_threshold(torch.optim.SGD, group(lr=0.1, maximize=True)) is None
    assert stability_threshold(torch.optim.SGD, {"lr": 0.0}) is None


@pytest.mark.parametrize(
    "hyper",
    [
        {"lr": 0.1},
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.1, "momentum": 0.5, "dampening": 0.3},
        {"lr": 0.1, "momentum": 0.9, "nesterov": True},
        {"lr": 0.1, "momentum": 0.7, "weight_decay": 0.4},
    ],
)
def test_sgd_diverges_exactly_above_its_threshold(hyper: dict) -> None:
    """torch.optim.SGD on 1/2 sum_i a_i x_i^2, curvatures 3% below and above the threshold."""
    threshold = stability_threshold(torch.optim.SGD, group(**hyper))
    assert threshold is not None
    curvature = threshold.value * torch.tensor([0.97, 1.03], dtype=torch.float64)
    x = torch.ones(2, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([x], **hyper)
    for _ in range(2000):
        optimizer.zero_grad()
        (0.5 * curvature * x.pow(2)).sum().backward()
        optimizer.step()
    below, above = x.detach().abs().tolist()
    assert below < 1e-3 and above > 1e3
