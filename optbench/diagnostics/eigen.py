"""Extreme eigenvalues of a symmetric operator given only as ``matvec(v) -> A v``.

Both solvers work on flat vectors in the start vector's dtype and device and take the start vector
as input: a seeded draw (:func:`optbench.diagnostics.vectors.random_vector`) for a cold start, or
:func:`warm_start` from the previous probe's eigenvectors.

- :func:`lanczos`: the ``k`` algebraically largest eigenvalues (the top of the spectrum, not the
  largest in magnitude), with full reorthogonalization. Converges much faster than power iteration
  because it uses the whole Krylov space, not only its last vector.
- :func:`power_iteration`: the eigenvalue of largest magnitude ``|lambda|``, which is the sharpness
  only when the top eigenvalue outweighs the most negative one (usual for training-loss Hessians,
  not guaranteed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

Matvec = Callable[[Tensor], Tensor]

# Lanczos keeps its vectors in blocks of about this many bytes (at least one vector each): the
# unused rows of the last block are all it holds beyond the vectors themselves, and each block
# costs a few small ops per iteration, which only small operators notice (8-row blocks of
# 2,000-dim vectors made 100 iterations about 10% slower).
_BLOCK_BYTES = 2**24


@dataclass(frozen=True)
class EigenResult:
    """Eigenpairs, largest first, and what they cost."""

    eigenvalues: Tensor  # (k,)
    eigenvectors: Tensor  # (dim, k), unit columns
    residuals: Tensor  # (k,), ||A y - lambda y|| (Lanczos: its standard estimate beta_m |s_m|)
    num_matvecs: int
    iterations: int
    converged: bool


def lanczos(
    matvec: Matvec, start: Tensor, k: int = 1, *, tol: float = 1e-3, max_iters: int = 100
) -> EigenResult:
    """The ``k`` largest eigenvalues of the symmetric operator ``matvec`` and their Ritz vectors.

    Stops when every top-``k`` Ritz pair's residual norm ``r = beta_m |s_m|`` (Parlett, The
    Symmetric Eigenvalue Problem, 1998, §13.2) is at most ``tol * |theta|``. Some eigenvalue then
    lies within ``r`` of ``theta`` (so ``tol`` bounds the relative error), and an isolated one
    within ``r^2 / gap``, so the actual error is usually far smaller (about 1e-6 for ``tol=1e-3`` on
    network Hessians). Sharper rules stop earlier but are not safe: the gap estimated from the Ritz
    values (``theta_1 - theta_2``) overestimates the true gap until ``theta_2`` has converged, and
    ``r^2 / gap``, alone or with a small change of ``theta_1`` between iterations, stopped at a
    2e-3 error on a CNN whose top eigenvalues are 2% apart (``benchmarks/sharpness.py``), and was
    caught converging to lambda_2 before lambda_1 had appeared (a tight top cluster, as at the edge
    of stability). The residual rule's extra iterations are its insurance; a warm start is what
    saves HVPs.

    Returns fewer than ``k`` pairs if the Krylov space of ``start`` is exhausted first (an operator
    of low rank). Keeps all Lanczos vectors, in blocks allocated as the iterations need them and
    never copied (growing one tensor by concatenation held the old basis, the new one and the
    result at once: 3x the basis at llama350m): one vector per iteration, at most
    ``_BLOCK_BYTES`` (16 MiB) unused, and a few working vectors. One matvec per iteration; at most
    ``min(max_iters, dim)`` iterations.
    """
    dim = start.numel()
    if start.shape != (dim,):
        raise ValueError(f"start must be a flat vector, got shape {tuple(start.shape)}")
    if not 1 <= k <= dim:
        raise ValueError(f"k must be in [1, {dim}], got {k}")
    max_iters = min(max_iters, dim)
    rows = max(1, _BLOCK_BYTES // (dim * start.element_size()))
    blocks: list[Tensor] = []  # the Lanczos vectors so far, as rows of blocks of `rows` rows
    q = start / start.norm()
    alphas: list[float] = []
    betas: list[float] = []
    for m in range(1, max_iters + 1):
        row = (m - 1) % rows
        if row == 0:
            blocks.append(start.new_empty(min(rows, max_iters - m + 1), dim))
        blocks[-1][row] = q
        w = matvec(q)
        scale = float(w.norm())
        alphas.append(float(q @ w))
        # Full reorthogonalization (twice is enough): this also subtracts alpha q_m + beta q_{m-1}.
        spans = [*blocks[:-1], blocks[-1][: row + 1]]
        w = _project_out(_project_out(w, spans), spans)
        beta = float(w.norm())
        theta, vecs = _tridiagonal_eigh(alphas, betas)
        top = min(k, m)
        ritz, coeffs = theta[-top:].flip(0), vecs[:, -top:].flip(1)
        residuals = beta * coeffs[-1].abs()
        # A vanishing beta means the Krylov space is invariant: its Ritz pairs are exact and
        # further directions only repeat eigenvalues already found (or were absent from start).
        exhausted = beta <= 1000 * torch.finfo(start.dtype).eps * scale
        converged = exhausted or (m >= k and bool((residuals <= tol * ritz.abs()).all()))
        if converged or m == max_iters:
            break
        betas.append(beta)
        q = w / beta
    vectors = start.new_zeros(dim, top)
    parts = coeffs.to(start.dtype).to(start.device).split([len(span) for span in spans])
    for span, part in zip(spans, parts, strict=True):
        vectors.addmm_(span.T, part)
    vectors = vectors / vectors.norm(dim=0, keepdim=True)
    return EigenResult(
        eigenvalues=ritz.to(start.dtype).to(start.device),
        eigenvectors=vectors,
        residuals=residuals.to(start.dtype).to(start.device),
        num_matvecs=m,
        iterations=m,
        converged=converged,
    )


def power_iteration(
    matvec: Matvec, start: Tensor, *, tol: float = 1e-3, max_iters: int = 100
) -> EigenResult:
    """The eigenvalue of largest magnitude and its eigenvector, by power iteration.

    The estimate is the Rayleigh quotient ``v^T A v`` of the current unit vector; it stops when two
    successive estimates differ by at most ``tol`` relative (PyHessian's rule), which can happen
    long before the estimate is ``tol``-accurate when the top two eigenvalues are close. Pass the
    last eigenvector as ``start`` to warm-start. One matvec per iteration.
    """
    dim = start.numel()
    if start.shape != (dim,):
        raise ValueError(f"start must be a flat vector, got shape {tuple(start.shape)}")
    v = start / start.norm()
    previous: float | None = None
    converged = False
    for iteration in range(1, max_iters + 1):
        w = matvec(v)
        value = float(v @ w)
        norm = float(w.norm())
        converged = norm == 0.0 or (
            previous is not None and abs(value - previous) <= tol * abs(previous)
        )
        if converged or iteration == max_iters:
            break
        previous = value
        v = w / norm
    return EigenResult(
        eigenvalues=torch.tensor([value], dtype=start.dtype, device=start.device),
        eigenvectors=v.unsqueeze(1),
        residuals=(w - value * v).norm().reshape(1),
        num_matvecs=iteration,
        iterations=iteration,
        converged=converged,
    )


def warm_start(previous: Tensor, fresh: Tensor) -> Tensor:
    """A Lanczos start from the previous solve's eigenvector(s) ``previous`` (one vector; for the
    top ``k``, their sum) and a fresh random vector, weighted equally.

    The previous eigenvector gives the top of the new spectrum a head start when the weights have
    moved little since (``benchmarks/sharpness.py``: a trained MLP, 100 GD steps later, takes 7
    HVPs instead of 12-15). The fresh half keeps every eigenvector's share at least ``1/sqrt(2)``
    of a cold start's, so a new top eigenvector that the previous one is orthogonal to (the top two
    crossed) stays in reach, as it would not be from the previous vector alone. The solve can
    still stop on the old top first when the tolerance is loose, as a cold start can miss a top
    eigenvalue whose share of the start is small: over 104 probes of four GD runs (tanh MLP, square
    loss, lr 0.1-0.5, to the edge of stability, a probe every 25-100 steps) warm starts never
    missed 1e-3, cold starts once.
    """
    return previous / previous.norm() + fresh / fresh.norm()


def _project_out(w: Tensor, spans: list[Tensor]) -> Tensor:
    """``w`` minus its projection on the orthonormal rows of ``spans``, ``w - S^T (S w)`` for ``S``
    the rows stacked, computed block by block without stacking them (classical Gram-Schmidt:
    every coefficient is taken from ``w`` before any is subtracted). ``w`` is left as it is."""
    coefficients = [span @ w for span in spans]
    out = torch.addmv(w, spans[0].T, coefficients[0], alpha=-1)
    for span, c in zip(spans[1:], coefficients[1:], strict=True):
        out.addmv_(span.T, c, alpha=-1)
    return out


def _tridiagonal_eigh(alphas: list[float], betas: list[float]) -> tuple[Tensor, Tensor]:
    """Eigenpairs of the Lanczos matrix T (float64, CPU, one thread: it is tiny, and a multithreaded
    eigh of a tiny matrix can take 100x longer on a busy machine)."""
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        off = torch.tensor(betas, dtype=torch.float64)
        t += torch.diag(off, 1) + torch.diag(off, -1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.linalg.eigh(t)
    finally:
        torch.set_num_threads(threads)
