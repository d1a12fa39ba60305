"""Muon: MomentUm Orthogonalized by Newton–Schulz, for 2-D parameters.

Reference: K. Jordan et al., "Muon: An optimizer for hidden layers in neural networks" (2024),
https://kellerjordan.github.io/posts/muon/, code github.com/KellerJordan/Muon (``muon.py``:
``zeropower_via_newtonschulz5``, ``muon_update``, ``SingleDeviceMuon``).

Per step, for a parameter ``W`` with gradient ``G`` and momentum buffer ``B``:
``B <- mu·B + (1 - mu)·G``; ``U = (1 - mu)·G + mu·B`` (Nesterov) or ``U = B``; ``O`` = 5 steps of
the quintic Newton–Schulz map on ``U / ||U||_F`` (in the compute dtype, wide orientation); ``O *=
sqrt(max(1, rows/cols))``; ``W <- W(1 - lr·wd) - lr·O``. One state buffer per parameter.

Defaults, all from the reference: ``lr=0.02``, ``momentum=0.95``, ``nesterov=True``, ``ns_steps=5``,
coefficients (3.4445, -4.7750, 2.0315), ``weight_decay=0``.

``compute_dtype="auto"`` (our default) is resolved per parameter at each step: bfloat16, the
reference's dtype, where the device computes bf16 matmuls natively (CUDA; CPUs with AVX512-BF16
or AMX, as oneDNN reports them); float32 where bf16 would be emulated (other CPUs: a step on the
LLaMA-60M shapes there takes minutes in bf16, ~700x AdamW's). The numerics thus follow the host,
as float rounding across CPUs already does; ask for a dtype by name to pin them. ``"bfloat16"``
reproduces the reference bit for bit on any device; ``"float32"`` and ``"float64"`` fuse the
polynomial into ``addmm`` (see :func:`~optbench.optimizers._matrix.orthogonalize_quintic`).

Reimplemented rather than wrapping ``torch.optim.Muon`` (present in torch 2.13): that class has
other defaults (lr 1e-3, weight decay 0.1), fuses the polynomial into ``addmm`` and clamps the norm
instead of adding eps, scales the learning rate rather than the bf16 update, and has no
compute-dtype option. Each of these changes bf16 rounding, which the iteration amplifies: on a
small least-squares problem its parameters differ from the reference's by ~1e-2 relative after 20
steps, while this class matches the reference bit for bit. Unlike the reference, the gradient is
not modified in place.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import torch

from optbench.optimizers._common import (
    check_beta,
    check_choice,
    check_lr,
    check_non_negative,
    check_positive_int,
    closure_loss,
    decay_weights,
)
from optbench.optimizers._matrix import MatrixOptimizer, as_matrix, orthogonalize_quintic

COMPUTE_DTYPES = ("auto", "bfloat16", "float32", "float64")


def compute_dtype_on(name: str, device: torch.device) -> torch.dtype:
    """The dtype that compute dtype ``name`` (one of :data:`COMPUTE_DTYPES`) means on ``device``."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" or _cpu_has_native_bf16() else torch.float32
    return getattr(torch, name)


@functools.cache
def _cpu_has_native_bf16() -> bool:
    """Whether this CPU runs bf16 matmuls in hardware (oneDNN's check; no public API says it)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


class Muon(MatrixOptimizer):
    """Muon for matrix parameters (see the module docstring for the algorithm and defaults)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.02,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_steps: int = 5,
        weight_decay: float = 0.0,
        compute_dtype: str | torch.dtype = "auto",
    ) -> None:
        check_lr(lr)
        if isinstance(compute_dtype, torch.dtype):
            compute_dtype = str(compute_dtype).removeprefix("torch.")
        check_choice("compute_dtype", compute_dtype, COMPUTE_DTYPES)
        check_beta("momentum", momentum)
        check_positive_int("ns_steps", ns_steps)
        check_non_negative("weight_decay", weight_decay)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "nesterov": nesterov,
            "ns_steps": ns_steps,
            "weight_decay": weight_decay,
            "compute_dtype": compute_dtype,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = closure_loss(closure)
        for group in self.param_groups:
            mu = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.lerp_(p.grad, 1 - mu)
                update = p.grad.lerp(buf, mu) if group["nesterov"] else buf
                dtype = compute_dtype_on(group["compute_dtype"], p.device)
                update = orthogonalize_quintic(as_matrix(update), group["ns_steps"], dtype)
                if update.size(0) > update.size(1):
                    update *= (update.size(0) / update.size(1)) ** 0.5
                decay_weights(p, group["lr"], group["weight_decay"])
                p.add_(update.reshape(p.shape), alpha=-group["lr"])
        return loss
