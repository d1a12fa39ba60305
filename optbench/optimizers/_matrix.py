"""Matrix functions shared by the matrix-aware optimizers (Muon, SWAN, GaLore).

All functions act on the last two dimensions, so a stack of same-shape matrices ``(B, m, n)`` is
processed with batched matmuls in one call.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim import Optimizer

#: Muon's quintic Newton–Schulz coefficients (KellerJordan/Muon, ``zeropower_via_newtonschulz5``).
MUON_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


class MatrixOptimizer(Optimizer):
    """Base of the optimizers that act on matrices (checked as groups are added).

    A parameter of more dimensions (a conv kernel, out × in × kh × kw) is treated as the matrix
    out × (in·kh·kw), as the Muon reference does for conv filters: see :func:`as_matrix`.
    """

    whole_matrices = True  # each update needs the whole matrix: no FSDP shards (optbench.contract)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        for p in self.param_groups[-1]["params"]:
            if p.ndim < 2:
                raise ValueError(
                    f"{type(self).__name__} only accepts matrix parameters (2-D, or conv kernels "
                    f"taken as out × rest), got shape {tuple(p.shape)}; route embeddings, heads "
                    "and 1-D parameters to a fallback optimizer such as AdamW"
                )


def as_matrix(t: torch.Tensor) -> torch.Tensor:
    """``t`` as a matrix: its first dimension by all others (a copy if ``t`` is not contiguous,
    e.g. channels-last; updates are therefore applied with ``p.add_(u.reshape(p.shape))``)."""
    return t if t.ndim == 2 else t.reshape(t.shape[0], -1)


def orthogonalize_quintic(
    g: torch.Tensor,
    steps: int,
    dtype: torch.dtype = torch.bfloat16,
    coefficients: tuple[float, float, float] = MUON_NS_COEFFICIENTS,
    eps: float = 1e-7,
) -> torch.Tensor:
    """Approximate ``U V^T`` of ``g = U S V^T`` (a matrix or a stack ``(B, m, n)``) with Muon's
    quintic Newton–Schulz map.

    The steps of KellerJordan/Muon: cast to ``dtype``, work on the wide orientation, divide by the
    Frobenius norm (+eps), then ``X <- aX + (bA + cA·A) X`` with ``A = X X^T``. In bfloat16 (the
    reference's dtype) its operations run in its order, each rounded to bf16, so the result
    matches the reference bit for bit. In other dtypes the scalings are fused into the products
    (``addmm``: ``bA + c·A·A``, then ``aX + B·X``, as KellerJordan/modded-nanogpt's later
    ``train_gpt.py`` and ``torch.optim.Muon`` do), which saves five element-wise passes per step
    and rounds once per product. The result stays in ``dtype``.
    """
    a, b, c = coefficients
    tall = g.size(-2) > g.size(-1)
    x = g.to(dtype)
    if tall:
        x = x.mT
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + eps)
    fused = torch.addmm if x.ndim == 2 else torch.baddbmm
    for _ in range(steps):
        gram = x @ x.mT
        if dtype == torch.bfloat16:
            x = a * x + (b * gram + (c * gram) @ gram) @ x
        else:
            x = fused(x, fused(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.mT if tall else x


def inverse_sqrt_newton_schulz(a: torch.Tensor, steps: int, beta: float = 0.5) -> torch.Tensor:
    """``a^(-1/2)`` of symmetric positive (semi-)definite matrices by coupled Newton–Schulz.

    ``Y0 = a/||a||_F, Z0 = I``; ``Y <- beta·Y(3I - ZY)``, ``Z <- beta·(3I - ZY)Z``; then
    ``Z / sqrt(||a||_F)`` undoes the normalisation. With ``beta = 1/2`` (the classical iteration)
    each eigenvalue ``u = lambda·z^2`` follows ``u <- u(3 - u)^2 / 4``, which converges
    quadratically to 1 from any start in (0, 3). Another ``beta`` moves the fixed point to
    ``u* = 3 - 1/beta`` and its derivative to ``3 - 6·beta``: for ``beta`` outside (1/3, 2/3) (e.g.
    the community's 0.8) the fixed point is unstable and the eigenvalues keep wandering (bounded)
    around it, so the result is never exactly whitened, however many steps.
    """
    norm = torch.linalg.matrix_norm(a, keepdim=True).clamp_min(torch.finfo(a.dtype).tiny)
    eye = torch.eye(a.size(-1), dtype=a.dtype, device=a.device)
    y, z = a / norm, None  # Z0 = I, left implicit to skip the products with it
    for i in range(steps):
        t = 3.0 * eye - (y if z is None else z @ y)
        z = beta * (t if z is None else t @ z)
        if i < steps - 1:  # the last Y is never used
            y = beta * (y @ t)
    return z / norm.sqrt()


def inverse_sqrt_eigh(a: torch.Tensor) -> torch.Tensor:
    """Exact ``a^(-1/2)`` by eigendecomposition; eigenvalues below the usual numerical-rank cut-off
    (``max eigenvalue × size × machine eps``) are dropped, as in a pseudo-inverse."""
    evals, evecs = torch.linalg.eigh(a)
    cutoff = evals.amax(dim=-1, keepdim=True) * a.size(-1) * torch.finfo(a.dtype).eps
    inv_sqrt = torch.where(evals > cutoff, evals.clamp_min(torch.finfo(a.dtype).tiny).rsqrt(), 0.0)
    return (evecs * inv_sqrt.unsqueeze(-2)) @ evecs.mT
