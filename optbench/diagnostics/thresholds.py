"""Stability thresholds: the sharpness above which an optimizer's iteration is linearly unstable.

On a quadratic with curvature ``a`` along some eigenvector, each optimizer is a linear recurrence;
it diverges along that direction once ``a`` exceeds the threshold. Full-batch training tends to
sharpen until ``lambda_max`` reaches the threshold and then hovers there (Cohen et al. 2021,
"Gradient Descent on Neural Networks Typically Occurs at the Edge of Stability"; Cohen et al. 2022,
"Adaptive Gradient Methods at the Edge of Stability"). With step ``lr``:

- GD: ``2 / lr``.
- Heavy-ball momentum ``beta`` (``torch.optim.SGD``, buffer ``beta b + (1 - dampening) g``):
  ``(2 + 2 beta) / (lr (1 - dampening))``.
- Nesterov momentum ``beta`` (``nesterov=True``): ``(2 + 2 beta) / (lr (1 + 2 beta))``, the root
  ``z = -1`` of ``z^2 - (1 + beta)(1 - lr a) z + beta (1 - lr a)``; derived here, not quoted, and
  checked against ``torch.optim.SGD`` in the tests.
- SGD's coupled ``weight_decay`` adds ``wd`` to every curvature, so the loss Hessian's threshold is
  lowered by ``wd``.
- Adam/AdamW: ``(2 + 2 beta1) / ((1 - beta1) lr)`` (38/lr for beta1 = 0.9) on the *preconditioned*
  sharpness ``lambda_max(P^-1 H)``, ``P = sqrt(v_hat) + eps`` held fixed; weight decay is ignored.

Other optimizers have no known threshold: :func:`stability_threshold` returns ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class StabilityThreshold:
    """A threshold and what to compare it with."""

    value: float
    #: compare with lambda_max(P^-1 H) (:mod:`optbench.diagnostics.precondition`), not lambda_max(H)
    preconditioned: bool
    #: the formula used, e.g. "(2 + 2 beta) / lr"
    rule: str


_NAMES: dict[type[torch.optim.Optimizer], str] = {
    torch.optim.SGD: "sgd",
    torch.optim.Adam: "adam",
    torch.optim.AdamW: "adamw",
}


def stability_threshold(
    optimizer: type[torch.optim.Optimizer] | str, group: Mapping[str, Any]
) -> StabilityThreshold | None:
    """The threshold for one param group (``optimizer.param_groups[i]``) of ``optimizer``.

    ``optimizer`` is the class or its lower-case name (``"sgd"``, ``"adam"``, ``"adamw"``); only
    these exact classes are recognized, since a subclass may change the update. Returns ``None``
    for other optimizers, ``maximize=True``, a non-positive ``lr`` and ``dampening >= 1``.
    """
    name = optimizer.lower() if isinstance(optimizer, str) else _NAMES.get(optimizer)
    lr = float(group["lr"])
    if lr <= 0 or group.get("maximize", False):
        return None
    if name == "sgd":
        return _sgd_threshold(lr, group)
    if name in ("adam", "adamw"):
        beta1 = float(group.get("betas", (0.9, 0.999))[0])
        value = (2 + 2 * beta1) / ((1 - beta1) * lr)
        return StabilityThreshold(value, True, "(2 + 2 beta1) / ((1 - beta1) lr)")
    return None


def _sgd_threshold(lr: float, group: Mapping[str, Any]) -> StabilityThreshold | None:
    beta = float(group.get("momentum", 0.0))
    dampening = float(group.get("dampening", 0.0))
    wd = float(group.get("weight_decay", 0.0))
    if beta and dampening >= 1:
        return None
    if beta == 0:
        value, rule = 2 / lr, "2 / lr"
    elif group.get("nesterov", False):
        value, rule = (2 + 2 * beta) / (lr * (1 + 2 * beta)), "(2 + 2 beta) / (lr (1 + 2 beta))"
    else:
        value, rule = (2 + 2 * beta) / (lr * (1 - dampening)), "(2 + 2 beta) / (lr (1 - dampening))"
    if wd:
        value, rule = value - wd, f"{rule} - weight_decay"
    return StabilityThreshold(value, False, rule)
