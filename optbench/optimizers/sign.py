"""signSGD and Signum: steps along the sign of the gradient or of its momentum.

Paper: J. Bernstein, Y.-X. Wang, K. Azizzadenesheli, A. Anandkumar, "signSGD: Compressed
Optimisation for Non-Convex Problems", arXiv 1802.04434 (ICML 2018), Algorithms 1 (signSGD) and
2 (Signum). No reference package; tests check the closed form.

signSGD: ``W <- W(1 - lr·wd) - lr·sign(g)``, stateless.
Signum: ``m <- beta·m + (1 - beta)·g``; ``W <- W(1 - lr·wd) - lr·sign(m)``, one buffer.

Defaults: ``momentum=0.9`` from the paper's Signum experiments; ``lr=1e-4``, the order of the
paper's tuned Signum learning rates (there is no universal default: tune it);
``weight_decay=0``. Weight decay is decoupled here; the paper's runs folded it into the gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from optbench.optimizers._common import (
    check_beta,
    check_lr,
    check_non_negative,
    closure_loss,
    decay_weights,
)


class Signum(Optimizer):
    """Signum; with ``momentum=0`` it is signSGD and keeps no state."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
    ) -> None:
        check_lr(lr)
        check_beta("momentum", momentum)
        check_non_negative("weight_decay", weight_decay)
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = closure_loss(closure)
        for group in self.param_groups:
            beta = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                direction = p.grad
                if beta != 0.0:
                    state = self.state[p]
                    if not state:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    direction = state["momentum_buffer"].lerp_(p.grad, 1 - beta)
                decay_weights(p, group["lr"], group["weight_decay"])
                p.add_(direction.sign(), alpha=-group["lr"])
        return loss


class SignSGD(Signum):
    """signSGD: Signum without momentum, stateless."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-4, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, momentum=0.0, weight_decay=weight_decay)
