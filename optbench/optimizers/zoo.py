"""Any optimizer of the ``pytorch-optimizer`` package by name: ``optimizer=zoo optimizer.name=adan``.

Extra hyperparameters go straight to the optimizer: ``+optimizer.weight_decay=0.1``. The package
is an optional extra (``pip install 'optbench[zoo]'``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import torch

from optbench.errors import OptbenchError


def zoo(params: Iterable[Any], name: str, lr: float = 1e-3, **hyperparameters: Any) -> torch.optim.Optimizer:
    try:
        from pytorch_optimizer import get_supported_optimizers, load_optimizer
    except ImportError:
        raise OptbenchError(
            "optimizer=zoo needs the pytorch-optimizer package: pip install 'optbench[zoo]'"
        ) from None
    try:
        factory = load_optimizer(name)
    except NotImplementedError:
        close = difflib.get_close_matches(name.lower(), get_supported_optimizers(), n=5)
        raise OptbenchError(
            f"optimizer.name={name} is not a pytorch-optimizer optimizer"
            + (f"; similar: {', '.join(close)}" if close else "")
            + " (all: python -c 'import pytorch_optimizer as p; print(p.get_supported_optimizers())')"
        ) from None
    try:
        return factory(params, lr=lr, **hyperparameters)
    except TypeError as err:  # an option this optimizer does not take
        raise OptbenchError(f"optimizer=zoo name={name}: {err}") from None
