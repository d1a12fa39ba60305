"""Lion: EvoLved Sign Momentum.

Paper: X. Chen et al., "Symbolic Discovery of Optimization Algorithms", arXiv 2302.06675
(NeurIPS 2023), Algorithm 2. Reference code: the ``lion-pytorch`` package (lucidrains), whose
update this follows operation for operation.

Per step: ``W <- W(1 - lr·wd)``; ``W <- W - lr·sign(beta1·m + (1 - beta1)·g)``;
``m <- beta2·m + (1 - beta2)·g``. One state buffer per parameter.

Defaults: ``betas=(0.9, 0.99)`` from the paper; ``lr=1e-4`` and ``weight_decay=0`` from
lion-pytorch (the paper advises an lr 3-10× smaller and a weight decay 3-10× larger than AdamW's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from optbench.optimizers._common import (
    check_betas,
    check_lr,
    check_non_negative,
    closure_loss,
    decay_weights,
)


class Lion(Optimizer):
    """Lion with decoupled weight decay (see the module docstring)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
    ) -> None:
        check_lr(lr)
        check_betas(betas, 2)
        check_non_negative("weight_decay", weight_decay)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = closure_loss(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                exp_avg = state["exp_avg"]
                decay_weights(p, group["lr"], group["weight_decay"])
                direction = (exp_avg * beta1).add_(p.grad, alpha=1 - beta1).sign_()
                p.add_(direction, alpha=-group["lr"])
                exp_avg.mul_(beta2).add_(p.grad, alpha=1 - beta2)
        return loss
