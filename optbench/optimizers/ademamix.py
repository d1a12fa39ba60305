"""AdEMAMix: Adam with a mixture of a fast and a slow exponential moving average of gradients.

Paper: M. Pagliardini, P. Ablin, D. Grangier, "The AdEMAMix Optimizer: Better, Faster, Older",
arXiv 2409.03137 (ICLR 2025), Algorithm 1. Reference code: github.com/apple/ml-ademamix,
``pytorch/ademamix.py``, whose update and warmup schedulers this follows.

Per step ``t`` (from 1), with ``m1, v`` Adam's moments and ``m2`` the slow EMA (no bias correction):
``m1 <- b1·m1 + (1-b1)·g``; ``m2 <- b3(t)·m2 + (1-b3(t))·g``; ``v <- b2·v + (1-b2)·g²``;
``W <- W(1 - lr·wd) - lr·(m1/(1-b1^t) + alpha(t)·m2) / (sqrt(v/(1-b2^t)) + eps)``.
Three state buffers per parameter.

Warmup (reference schedulers): with ``alpha_warmup=T``, ``alpha(t)`` rises linearly from 0 to
``alpha`` over ``T`` steps; with ``beta3_warmup=T``, ``b3(t)`` moves from ``b1`` to ``b3`` linearly
in the EMA's half-life, ``f(b) = ln(0.5)/ln(b + 1e-8) - 1``, ``b3(t) = f^-1((1-t/T)·f(b1) +
t/T·f(b3))`` (the 1e-8 is the reference's). Both are off by default, as in the reference; the
paper sets both to the total number of training steps, which the optimizer cannot know.

Defaults: ``lr=1e-3``, ``betas=(0.9, 0.999, 0.9999)``, ``eps=1e-8``, ``weight_decay=0`` from the
reference; ``alpha=8`` from the paper's language-model experiments (the reference's default is 2).
Weight decay is decoupled (the reference adds ``wd·W`` to the update, which is the same).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from optbench.optimizers._common import (
    check_betas,
    check_lr,
    check_non_negative,
    check_positive_int,
    closure_loss,
    decay_weights,
)


def alpha_at(step: int, alpha: float, warmup: int | None) -> float:
    """The reference's linear warmup of alpha from 0."""
    if warmup is None or step >= warmup:
        return alpha
    return step / warmup * alpha


def beta3_at(step: int, beta1: float, beta3: float, warmup: int | None) -> float:
    """The reference's warmup of beta3 from beta1, linear in the EMA half-life."""
    if warmup is None or step >= warmup:
        return beta3

    def half_life(beta: float) -> float:
        return math.log(0.5) / math.log(beta + 1e-8) - 1

    frac = step / warmup
    mixed = (1.0 - frac) * half_life(beta1) + frac * half_life(beta3)
    return math.pow(0.5, 1 / (mixed + 1))


class AdEMAMix(Optimizer):
    """AdEMAMix with decoupled weight decay (see the module docstring)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float, float] = (0.9, 0.999, 0.9999),
        alpha: float = 8.0,
        alpha_warmup: int | None = None,
        beta3_warmup: int | None = None,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        check_lr(lr)
        check_betas(betas, 3)
        check_non_negative("alpha", alpha)
        for name, warmup in (("alpha_warmup", alpha_warmup), ("beta3_warmup", beta3_warmup)):
            if warmup is not None:
                check_positive_int(name, warmup)
        check_non_negative("eps", eps)
        check_non_negative("weight_decay", weight_decay)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "alpha": alpha,
            "alpha_warmup": alpha_warmup,
            "beta3_warmup": beta3_warmup,
            "eps": eps,
            "weight_decay": weight_decay,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = closure_loss(closure)
        for group in self.param_groups:
            beta1, beta2, beta3_final = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad, state = p.grad, self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg_fast"] = torch.zeros_like(p)
                    state["exp_avg_slow"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                alpha = alpha_at(t, group["alpha"], group["alpha_warmup"])
                beta3 = beta3_at(t, beta1, beta3_final, group["beta3_warmup"])
                fast, slow, sq = state["exp_avg_fast"], state["exp_avg_slow"], state["exp_avg_sq"]
                fast.mul_(beta1).add_(grad, alpha=1 - beta1)
                slow.mul_(beta3).add_(grad, alpha=1 - beta3)
                sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (sq.sqrt() / math.sqrt(1 - beta2**t)).add_(group["eps"])
                update = (fast / (1 - beta1**t)).add_(slow, alpha=alpha).div_(denom)
                decay_weights(p, group["lr"], group["weight_decay"])
                p.add_(update, alpha=-group["lr"])
        return loss
