"""Preconditioned curvature: the operator ``P^(-1/2) H P^(-1/2)`` and Adam's preconditioner ``P``.

For a positive diagonal ``P``, ``P^(-1/2) H P^(-1/2)`` is symmetric and has the eigenvalues of
``P^(-1) H``, the curvature an adaptive method actually steps along (Cohen et al. 2022, "Adaptive
Gradient Methods at the Edge of Stability"). Its eigenvectors ``u`` map to those of ``P^(-1) H``
as ``P^(-1/2) u``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from optbench.errors import OptbenchError

Matvec = Callable[[Tensor], Tensor]


def preconditioned(matvec: Matvec, diag: Tensor) -> Matvec:
    """``v -> P^(-1/2) H P^(-1/2) v`` for ``H v = matvec(v)`` and a flat positive diagonal ``P``."""
    if diag.ndim != 1:
        raise ValueError(
            f"the preconditioner must be a flat diagonal, got shape {tuple(diag.shape)}"
        )
    if not bool((diag > 0).all()):
        raise ValueError("the preconditioner's diagonal must be positive")
    inv_sqrt = diag.rsqrt()
    return lambda v: inv_sqrt * matvec(inv_sqrt * v)


def adam_preconditioner(optimizer: torch.optim.Optimizer, params: Sequence[Tensor]) -> Tensor:
    """Adam's ``P = sqrt(v_hat) + eps`` for ``params``, flat, in their order.

    ``v_hat = v / (1 - beta2^t)`` is the bias-corrected second moment (``max_exp_avg_sq`` under
    AMSGrad), read from a ``torch.optim.Adam``/``AdamW`` state after at least one step: the
    denominator of the optimizer's latest step.
    """
    group_of = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    parts = []
    for i, p in enumerate(params):
        state = optimizer.state.get(p, {})
        if id(p) not in group_of or "exp_avg_sq" not in state:
            raise OptbenchError(
                f"parameter {i} has no Adam state: preconditioned sharpness needs an Adam/AdamW "
                "optimizer that holds the parameter and has taken at least one step"
            )
        group = group_of[id(p)]
        second = state["max_exp_avg_sq"] if group.get("amsgrad") else state["exp_avg_sq"]
        step = float(state["step"])
        beta2 = float(group["betas"][1])
        v_hat = second.detach() / (1.0 - beta2**step)
        parts.append((v_hat.sqrt() + float(group["eps"])).reshape(-1))
    return torch.cat(parts)
