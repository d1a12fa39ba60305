"""Optimizers configured from torch.optim match torch.optim built by hand, step for step."""

from __future__ import annotations

import copy

import pytest
import torch

from optbench.runner.build import build_optimizer
from optbench.runner.config import compose

REFERENCES = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.9, 0.999), eps=1e-8),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01),
    "adafactor": lambda p: torch.optim.Adafactor(p, lr=1e-2, beta2_decay=-0.8, d=1.0, weight_decay=0.0),
    "amsgrad": lambda p: torch.optim.Adam(p, lr=1e-3, amsgrad=True),
}


@pytest.mark.parametrize("name", REFERENCES)
def test_twenty_steps_equal_torch_optim(name):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    twin = copy.deepcopy(model)
    roles = {n: "matrix" if p.ndim == 2 else "vector" for n, p in model.named_parameters()}
    ours = build_optimizer(compose([f"optimizer={name}"]).optimizer, model, roles)
    reference = REFERENCES[name](twin.parameters())
    data = torch.randn(20, 32, 8)
    for x in data:
        for m, opt in ((model, ours), (twin, reference)):
            m(x).square().mean().backward()
            opt.step()
            opt.zero_grad()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=0)
