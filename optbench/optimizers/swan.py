"""SWAN: SGD with Whitening And Normalization, a stateless optimizer for matrix parameters.

Paper: C. Ma, W. Gong, M. Scetbon, E. Meeds, "SWAN: SGD with Normalization and Whitening Enables
Stateless LLM Training", arXiv 2412.13148, ICML 2025. The authors' code was not released (the
paper points to github.com/microsoft/msr_optim); the options below follow the paper's algorithm
and the community re-implementations, as noted per option.

For an m×n gradient ``G`` (m = output dimension) each step computes

1. GradNorm: ``G~ = (G - rowmean) / (rowstd + eps)``, each row standardised over its n entries
   (population std).
2. GradWhitening: ``D = (G~ G~^T + eps_r I)^(-1/2) G~``, by coupled Newton–Schulz (see
   :func:`~optbench.optimizers._matrix.inverse_sqrt_newton_schulz`) or, with
   ``method="eigh"``, by an exact eigendecomposition (reference path for tests and ablations).
3. optionally ``D <- D · ||G~||_F / ||D||_F`` (``rescale``), then ``W <- W(1 - lr·wd) - lr·D``.

No optimizer state is kept: ``optimizer.state`` stays empty.

Implementation notes and defaults:

- Whitening works on the smaller Gram matrix: for m > n it uses the identity
  ``(G~G~^T + eps_r I)^(-1/2) G~ = G~ (G~^T G~ + eps_r I)^(-1/2)`` (both equal
  ``U diag(s / sqrt(s^2 + eps_r)) V^T``), so tall and wide matrices cost the same; gradients of the
  same (oriented) shape are stacked and whitened with batched matmuls.
- ``ridge`` (default 1e-5): ``eps_r = ridge · ||G~||_F^2 / min(m, n)``, i.e. ``ridge`` times the
  mean eigenvalue of the Gram matrix (about ``ridge · max(m, n)`` after GradNorm). Needed because
  row-centering gives ``G~·1 = 0``: a square (or tall) ``G~`` is rank-deficient and its Gram matrix
  singular. Directions with ``s^2 >> eps_r`` are whitened; weaker ones are damped instead of blown
  up. 1e-5 changes the result on well-conditioned inputs by ~1e-5 relative. Our choice; the paper
  does not give one.
- ``ns_steps=10, ns_beta=0.5``: 10 steps is the community setting; the step size 0.5 is the
  classical Newton–Schulz iteration, chosen over the community's 0.8 because 0.8 never converges
  (its fixed point is unstable; measured ~25% from the exact whitening at any step count), while
  0.5 with 10 steps matches the eigendecomposition (no ridge, fp32) to ~1e-6 for Gram condition
  numbers up to ~30, 5e-5 at 100 and 5e-2 at 1e3 (12 steps: 6e-4 at 1e3; 16 steps: 5e-5 at 1e4).
  The Frobenius normalisation is what makes small eigenvalues slow: they grow by 2.25× per step
  until near 1. Square and tall gradients are always ill-conditioned (see ``ridge``); there the
  weakest directions stay partly unwhitened. Cost: about 3·ns_steps k×k products, k = min(m, n).
- ``compute_dtype=float32``: the paper whitens in FP32 while weights and gradients are BF16.
- ``rescale=True``: community code (and an optional step in public write-ups of the paper) rescales
  ``D`` to the norm of ``G~``, so updates have unit RMS like Adam's and Adam-like learning rates
  apply. Without it, ``D`` has singular values <= 1 (RMS ~ 1/sqrt(max(m, n))).
- ``lr=1e-3``: Adam's learning rate in the GaLore LLaMA/C4 benchmark that the paper follows;
  the paper's own SWAN learning rate is not stated in a form we could confirm. Tune it.
- ``weight_decay=0.0``: as in that benchmark; decoupled (AdamW-style).
- ``eps=1e-8``: guards rows with zero variance (they become zero rows of ``G~``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from optbench.optimizers._common import (
    check_choice,
    check_lr,
    check_non_negative,
    check_positive_int,
    closure_loss,
    decay_weights,
    dtype_name,
    resolve_dtype,
)
from optbench.optimizers._matrix import (
    MatrixOptimizer,
    as_matrix,
    inverse_sqrt_eigh,
    inverse_sqrt_newton_schulz,
)

METHODS = ("newton_schulz", "eigh")
_Entry = tuple[torch.Tensor, torch.Tensor, bool]  # (param, normalised gradient, transposed?)


def grad_norm(g: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """GradNorm: standardise each row of ``g`` over its last dimension (population std)."""
    centred = g - g.mean(dim=-1, keepdim=True)
    std = centred.square().mean(dim=-1, keepdim=True).sqrt()
    return centred / (std + eps)


def grad_whitening(
    g: torch.Tensor,
    ns_steps: int = 10,
    ns_beta: float = 0.5,
    ridge: float = 1e-5,
    method: str = "newton_schulz",
) -> torch.Tensor:
    """GradWhitening: ``(g g^T + eps_r I)^(-1/2) g`` for a matrix or a stack ``(..., m, n)``."""
    tall = g.size(-2) > g.size(-1)
    x = g.mT if tall else g
    gram = x @ x.mT
    if ridge > 0.0:
        size = gram.size(-1)
        mean_eig = gram.diagonal(dim1=-2, dim2=-1).sum(-1) / size
        eye = torch.eye(size, dtype=gram.dtype, device=gram.device)
        gram = gram + (ridge * mean_eig)[..., None, None] * eye
    if method == "eigh":
        inv_sqrt = inverse_sqrt_eigh(gram)
    else:
        inv_sqrt = inverse_sqrt_newton_schulz(gram, ns_steps, ns_beta)
    out = inv_sqrt @ x
    return out.mT if tall else out


class SWAN(MatrixOptimizer):
    """SWAN for matrix parameters (see the module docstring for the algorithm and defaults)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        ns_steps: int = 10,
        ns_beta: float = 0.5,
        ridge: float = 1e-5,
        rescale: bool = True,
        method: str = "newton_schulz",
        compute_dtype: str | torch.dtype = "float32",
        eps: float = 1e-8,
    ) -> None:
        check_lr(lr)
        check_non_negative("weight_decay", weight_decay)
        check_positive_int("ns_steps", ns_steps)
        if not 0.0 < ns_beta < 1.0:
            raise ValueError(f"Invalid ns_beta: {ns_beta} (must be in (0, 1))")
        check_non_negative("ridge", ridge)
        check_choice("method", method, METHODS)
        check_non_negative("eps", eps)
        defaults = {
            "lr": lr,
            "weight_decay": weight_decay,
            "ns_steps": ns_steps,
            "ns_beta": ns_beta,
            "ridge": ridge,
            "rescale": rescale,
            "method": method,
            "compute_dtype": dtype_name(compute_dtype, "compute_dtype"),
            "eps": eps,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = closure_loss(closure)
        for group in self.param_groups:
            # Normalised gradients in wide orientation, bucketed by shape for batched whitening.
            buckets: dict[torch.Size, list[_Entry]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = as_matrix(p.grad).to(resolve_dtype(group["compute_dtype"]))
                g = grad_norm(grad, group["eps"])
                tall = g.size(0) > g.size(1)
                x = g.T if tall else g
                buckets.setdefault(x.shape, []).append((p, x, tall))
            for entries in buckets.values():
                self._update(group, entries)
        return loss

    @staticmethod
    def _update(group: dict[str, Any], entries: list[_Entry]) -> None:
        stack = torch.stack([x for _, x, _ in entries])
        delta = grad_whitening(
            stack, group["ns_steps"], group["ns_beta"], group["ridge"], group["method"]
        )
        if group["rescale"]:
            norms = torch.linalg.matrix_norm(delta, keepdim=True)
            delta = delta * (torch.linalg.matrix_norm(stack, keepdim=True) / norms.clamp_min(1e-30))
        for (p, _, tall), d in zip(entries, delta.unbind(0)):
            decay_weights(p, group["lr"], group["weight_decay"])
            p.add_((d.T if tall else d).reshape(p.shape), alpha=-group["lr"])
