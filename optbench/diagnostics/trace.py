"""Randomised estimates of the trace of a symmetric operator from matrix-vector products.

Hutchinson: ``tr(A) = E[z^T A z]``. With Rademacher probes ``z`` (entries +-1) each sample has
variance ``2 (||A||_F^2 - sum_i A_ii^2)``, the smallest of the usual probe distributions.

Hutch++ (Meyer, Musco, Musco, Woodruff, "Hutch++: Optimal Stochastic Trace Estimation", SOSA
2021): a third of the budget sketches the top eigenspace (Q from A·S), whose trace tr(QᵀAQ) is
taken exactly; Hutchinson then only samples the deflated rest (I − QQᵀ)A(I − QQᵀ). Hessians of
networks are dominated by a few outlying eigenvalues, which plain Hutchinson samples noisily;
Hutch++ removes them from the noise. It holds a dim × budget/3 basis, so for very large models
plain Hutchinson (O(dim) memory) is the choice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from optbench.diagnostics.vectors import random_vector


@dataclass(frozen=True)
class TraceEstimate:
    """The sample mean of ``z^T A z`` and its standard error (sample std / sqrt(probes))."""

    value: float
    stderr: float
    num_matvecs: int


def _mean_and_stderr(samples: list[float]) -> tuple[float, float]:
    values = torch.tensor(samples, dtype=torch.float64)
    return float(values.mean()), float(values.std() / math.sqrt(len(samples)))


def hutchinson_trace(
    matvec: Callable[[Tensor], Tensor],
    dim: int,
    *,
    num_probes: int = 100,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> TraceEstimate:
    """Estimate ``tr(A)`` from ``num_probes`` Rademacher probes (one matvec each)."""
    if num_probes < 2:
        raise ValueError(
            f"num_probes must be at least 2 to give a standard error, got {num_probes}"
        )
    samples = []
    for _ in range(num_probes):
        z = random_vector(
            dim, dtype=dtype, device=device, generator=generator, distribution="rademacher"
        )
        samples.append(float(z @ matvec(z)))
    mean, stderr = _mean_and_stderr(samples)
    return TraceEstimate(value=mean, stderr=stderr, num_matvecs=num_probes)


def hutchpp_trace(
    matvec: Callable[[Tensor], Tensor],
    dim: int,
    *,
    num_matvecs: int = 300,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> TraceEstimate:
    """Estimate ``tr(A)`` with Hutch++ in ``num_matvecs`` products (a third each: sketch, exact
    part, residual probes); the standard error is that of the residual's Hutchinson mean."""
    k = num_matvecs // 3
    if k < 2:
        raise ValueError(f"num_matvecs must be at least 6 for Hutch++, got {num_matvecs}")

    def probes() -> list[Tensor]:
        return [random_vector(dim, dtype=dtype, device=device, generator=generator,
                              distribution="rademacher") for _ in range(k)]

    basis, _ = torch.linalg.qr(torch.stack([matvec(s) for s in probes()], dim=1))
    exact = sum(float(q @ matvec(q)) for q in basis.unbind(1))
    samples = []
    for g in probes():
        residual = g - basis @ (basis.T @ g)
        samples.append(float(residual @ matvec(residual)))
    mean, stderr = _mean_and_stderr(samples)
    # the basis is narrower than k when dim < k
    return TraceEstimate(value=exact + mean, stderr=stderr, num_matvecs=2 * k + basis.shape[1])
