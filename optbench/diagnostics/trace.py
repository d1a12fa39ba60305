"""Hutchinson's estimate of the trace of a symmetric operator: ``tr(A) = E[z^T A z]``.

With Rademacher probes ``z`` (entries +-1) each sample ``z^T A z`` has variance
``2 (||A||_F^2 - sum_i A_ii^2)``, the smallest of the usual probe distributions.
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
    values = torch.tensor(samples, dtype=torch.float64)
    return TraceEstimate(
        value=float(values.mean()),
        stderr=float(values.std() / math.sqrt(num_probes)),
        num_matvecs=num_probes,
    )
