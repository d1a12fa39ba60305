"""What an optimizer needs from the training loop beyond ``backward`` and ``step``."""

from __future__ import annotations

import inspect

import torch

from optbench.optimizers._matrix import MatrixOptimizer


def _parts(optimizer: torch.optim.Optimizer) -> list[torch.optim.Optimizer]:
    return list(getattr(optimizer, "parts", {"": optimizer}).values())


def needs_create_graph(optimizer: torch.optim.Optimizer) -> bool:
    """Hessian-based optimizers (AdaHessian, Sophia-H) differentiate through the gradient, so the
    backward pass must keep its graph (``backward(create_graph=True)``). pytorch-optimizer marks
    them by a ``hessian`` argument to ``step`` (its base class gives every optimizer the Hutchinson
    helper, so that is no marker)."""
    return any("hessian" in inspect.signature(part.step).parameters for part in _parts(optimizer))


def has_train_eval_modes(optimizer: torch.optim.Optimizer) -> bool:
    """Schedule-Free optimizers evaluate at averaged weights: ``eval()`` before evaluation,
    ``train()`` before training steps."""
    return any(callable(getattr(part, "eval", None)) for part in _parts(optimizer))


def needs_whole_matrices(optimizer: torch.optim.Optimizer) -> bool:
    """Optimizers whose update of a matrix depends on the whole of it (Newton–Schulz, SVD
    projections, whitening, factored row/column moments): under FSDP each process holds only
    a shard of each matrix, so they cannot run there."""
    return any(isinstance(part, (MatrixOptimizer, torch.optim.Adafactor)) for part in _parts(optimizer))
