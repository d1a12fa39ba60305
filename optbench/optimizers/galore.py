"""GaLore-AdamW: Adam on a low-rank projection of each matrix gradient.

Paper: J. Zhao et al., "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection",
arXiv 2403.03507 (ICML 2024). Reference code: github.com/jiaweizzhao/GaLore,
``galore_torch/adamw.py`` and ``galore_torch/galore_projector.py``, followed here step by step.

For an m×n gradient ``G``, at the parameter's steps 0, T, 2T, ... (``T = update_proj_gap``) an SVD
of ``G`` (in fp32) gives the projector: with ``proj_type="std"``, ``P = V_r^T`` (r×n, "right")
when m >= n and ``P = U_r`` (m×r, "left") otherwise; ``"right"``/``"left"`` force one side.
Then ``R = G P^T`` (right) or ``R = P^T G`` (left), HF-AdamW moments on ``R``
(``m <- b1·m + (1-b1)·R``, ``v <- b2·v + (1-b2)·R²``, ``N = m / (sqrt(v) + eps)``), and
``W <- W - lr·sqrt(1-b2^t)/(1-b1^t) · scale · back(N)`` with ``back(N) = N P`` or ``P N``,
followed by decoupled weight decay ``W <- W(1 - lr·wd)``. Moments are kept when the projector
changes. State per matrix, all tensors in ``optimizer.state``: ``projector`` (in the parameter's
dtype, as in the reference), ``exp_avg`` and ``exp_avg_sq`` (rank-r shape), and ``step``.
A ``rank`` above min(m, n) uses all min(m, n) singular vectors, as the reference does.

Defaults: ``rank=128, update_proj_gap=200, scale=0.25, lr=0.01, weight_decay=0`` from the
reference's LLaMA-60M C4 script (``scripts/benchmark_c4/llama_60m.sh``); ``betas=(0.9, 0.999)``,
``eps=1e-6`` from the reference AdamW (Hugging Face flavour); ``proj_type="std"`` from the
reference projector.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from optbench.optimizers._common import (
    check_betas,
    check_choice,
    check_lr,
    check_non_negative,
    check_positive_int,
    closure_loss,
    decay_weights,
)
from optbench.optimizers._matrix import MatrixOptimizer, as_matrix

PROJ_TYPES = ("std", "right", "left")


def projects_right(shape: torch.Size, proj_type: str) -> bool:
    """Whether the projector acts on the right (``G P^T``) rather than the left (``P^T G``)."""
    if proj_type == "std":
        return shape[0] >= shape[1]
    return proj_type == "right"


def svd_projector(grad: torch.Tensor, rank: int, right: bool) -> torch.Tensor:
    """Top-``rank`` singular vectors of ``grad`` (fp32 SVD), in ``grad``'s dtype, as a compact copy
    (a slice would keep the whole SVD factor alive in the optimizer state)."""
    u, _, vh = torch.linalg.svd(grad.float(), full_matrices=False)
    basis = vh[:rank, :] if right else u[:, :rank]
    return basis.to(grad.dtype, memory_format=torch.contiguous_format, copy=True)


class GaLoreAdamW(MatrixOptimizer):
    """GaLore-AdamW for 2-D parameters (see the module docstring)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        rank: int = 128,
        update_proj_gap: int = 200,
        scale: float = 0.25,
        proj_type: str = "std",
    ) -> None:
        check_lr(lr)
        check_betas(betas, 2)
        check_non_negative("eps", eps)
        check_non_negative("weight_decay", weight_decay)
        check_positive_int("rank", rank)
        check_positive_int("update_proj_gap", update_proj_gap)
        check_non_negative("scale", scale)
        check_choice("proj_type", proj_type, PROJ_TYPES)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "rank": rank,
            "update_proj_gap": update_proj_gap,
            "scale": scale,
            "proj_type": proj_type,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = closure_loss(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                grad = as_matrix(p.grad)
                right = projects_right(grad.shape, group["proj_type"])
                if not state:
                    state["step"] = 0
                if state["step"] % group["update_proj_gap"] == 0:
                    state["projector"] = svd_projector(grad, group["rank"], right)
                proj = state["projector"]
                low_rank = grad @ proj.T if right else proj.T @ grad
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(low_rank)
                    state["exp_avg_sq"] = torch.zeros_like(low_rank)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                t = state["step"]
                exp_avg.mul_(beta1).add_(low_rank, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(low_rank, low_rank, value=1 - beta2)
                direction = exp_avg / exp_avg_sq.sqrt().add_(group["eps"])
                full = (direction @ proj if right else proj @ direction) * group["scale"]
                step_size = group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                p.add_(full.reshape(p.shape), alpha=-step_size)
                decay_weights(p, group["lr"], group["weight_decay"])
        return loss
