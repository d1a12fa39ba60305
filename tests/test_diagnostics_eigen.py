"""Lanczos and power iteration on explicit symmetric matrices with known spectra."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from optbench.diagnostics import eigen
from optbench.diagnostics.eigen import lanczos, power_iteration, warm_start
from optbench.diagnostics.vectors import random_vector

DTYPE = torch.float64


def with_spectrum(eigenvalues: list[float] | Tensor, seed: int = 0) -> Tensor:
    values = torch.as_tensor(eigenvalues, dtype=DTYPE)
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(values), len(values), generator=g, dtype=DTYPE))
    return (q * values) @ q.T


def start(dim: int, seed: int = 1) -> Tensor:
    return random_vector(dim, dtype=DTYPE, generator=torch.Generator().manual_seed(seed))


def test_lanczos_finds_the_algebraically_largest_power_iteration_the_largest_magnitude() -> None:
    a = with_spectrum([-10.0, 5.0, 4.0] + [1.0 / i for i in range(1, 48)])
    top = lanczos(lambda v: a @ v, start(50), k=2, tol=1e-8)
    assert top.eigenvalues.tolist() == pytest.approx([5.0, 4.0], rel=1e-8)
    magnitude = power_iteration(lambda v: a @ v, start(50), tol=1e-10, max_iters=1000)
    assert float(magnitude.eigenvalues[0]) == pytest.approx(-10.0, rel=1e-6)


def test_lanczos_top_k_on_a_large_matrix_and_its_ritz_vectors() -> None:
    spectrum = torch.linspace(0, 1, 400, dtype=DTYPE) ** 3 * 10
    a = with_spectrum(spectrum)
    result = lanczos(lambda v: a @ v, start(400), k=3, tol=1e-8, max_iters=200)
    assert result.converged and result.iterations > 18  # past the first growth of the basis
    torch.testing.assert_close(result.eigenvalues, spectrum.flip(0)[:3], rtol=1e-8, atol=0)
    residual = a @ result.eigenvectors - result.eigenvectors * result.eigenvalues
    torch.testing.assert_close(residual.norm(dim=0), result.residuals, rtol=1e-6, atol=1e-12)
    assert torch.allclose(result.eigenvectors.T @ result.eigenvectors, torch.eye(3, dtype=DTYPE))


def test_lanczos_stops_when_the_krylov_space_is_exhausted() -> None:
    u = torch.randn(100, 2, generator=torch.Generator().manual_seed(0), dtype=DTYPE)
    result = lanczos(lambda v: u @ (u.T @ v), start(100), k=3)
    assert result.converged and result.num_matvecs <= 3
    expected = torch.linalg.eigvalsh(u.T @ u).flip(0)
    torch.testing.assert_close(result.eigenvalues[:2], expected, rtol=1e-10, atol=0)


def test_unconverged_runs_say_so() -> None:
    a = with_spectrum(torch.linspace(1, 2, 300, dtype=DTYPE))
    assert not lanczos(lambda v: a @ v, start(300), tol=1e-12, max_iters=5).converged
    result = power_iteration(lambda v: a @ v, start(300), tol=1e-12, max_iters=5)
    assert not result.converged and result.num_matvecs == 5


def test_the_start_vector_fixes_the_result() -> None:
    a = with_spectrum(torch.linspace(0, 1, 60, dtype=DTYPE))
    runs = [lanczos(lambda v: a @ v, start(60, seed), k=2, tol=1e-3) for seed in (7, 7, 8)]
    assert torch.equal(runs[0].eigenvalues, runs[1].eigenvalues)
    assert not torch.equal(runs[0].eigenvalues, runs[2].eigenvalues)


def test_power_iteration_stops_on_relative_change_and_warm_starts() -> None:
    a = with_spectrum([3.0, 2.7] + [1.0] * 38)
    cold = power_iteration(lambda v: a @ v, start(40), tol=1e-8, max_iters=1000)
    warm = power_iteration(lambda v: a @ v, cold.eigenvectors[:, 0], tol=1e-8, max_iters=1000)
    assert float(cold.eigenvalues[0]) == pytest.approx(3.0, rel=1e-6)
    assert warm.num_matvecs == 2 < cold.num_matvecs
    assert float(warm.residuals[0]) < 1e-3


@pytest.mark.parametrize("bad", [{"k": 0}, {"k": 11}, {"start": torch.ones(2, 5)}])
def test_lanczos_rejects_bad_arguments(bad: dict) -> None:
    arguments = {"start": torch.ones(10, dtype=DTYPE), "k": 1} | bad
    with pytest.raises(ValueError):
        lanczos(lambda v: v, **arguments)


def test_warm_start_saves_matvecs_and_keeps_a_new_top_eigenvector_in_reach() -> None:
    values = [5.0, 4.9, 4.0] + [float(v) for v in torch.linspace(0, 3, 197)]
    a = with_spectrum(values)
    q = torch.linalg.eigh(a).eigenvectors  # ascending: q[:, -1] belongs to 5.0, q[:, -2] to 4.9
    noise = start(200, seed=2)
    near = q[:, -1] + 0.1 * noise / noise.norm()  # the last probe's vector; the weights moved since
    for tol in (1e-3, 1e-6):
        cold = lanczos(lambda v: a @ v, start(200), tol=tol)
        warm = lanczos(lambda v: a @ v, warm_start(near, start(200)), tol=tol)
        assert warm.num_matvecs < cold.num_matvecs
        assert float(warm.eigenvalues[0]) == pytest.approx(5.0, rel=tol)
    # The top two crossed: the last probe's vector is now the second eigenvector. Alone it spans an
    # invariant subspace, so 5.0 is out of reach; the fresh half brings it back.
    alone = lanczos(lambda v: a @ v, q[:, -2], tol=1e-6)
    assert alone.num_matvecs == 1 and float(alone.eigenvalues[0]) == pytest.approx(4.9, rel=1e-9)
    crossed = lanczos(lambda v: a @ v, warm_start(q[:, -2], start(200)), tol=1e-6)
    assert float(crossed.eigenvalues[0]) == pytest.approx(5.0, rel=1e-9)




@pytest.mark.parametrize("rows", [1, 3])
def test_lanczos_holds_one_vector_per_iteration(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    # At every product, the vector-sized storages the solver's frame holds (its variables, and the
    # lists and tuples in them; not the caller's start vector) are the Lanczos vectors so far, the
    # last block's unused rows and two working vectors (q, the last w): never a grown basis.
    import sys

    dim, iterations = 4096, 30
    vector = dim * DTYPE.itemsize
    monkeypatch.setattr(eigen, "_BLOCK_BYTES", rows * vector)  # blocks of `rows` vectors
    diagonal, first = torch.linspace(0, 1, dim, dtype=DTYPE), start(dim)
    theirs = {diagonal.untyped_storage().data_ptr(), first.untyped_storage().data_ptr()}
    held: list[float] = []

    def tensors(value: object) -> list[Tensor]:
        if isinstance(value, Tensor):
            return [value]
        if isinstance(value, list | tuple):
            return [t for item in value for t in tensors(item)]
        return []

    def matvec(v: Tensor) -> Tensor:
        frame = sys._getframe(1)  # lanczos
        storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                    for t in tensors(list(frame.f_locals.values()))
                    if t.untyped_storage().data_ptr() not in theirs}
        # the tridiagonal matrix's eigenpairs are smaller than a vector
        held.append(sum(n for n in storages.values() if n >= vector) / vector)
        return diagonal * v

    result = lanczos(matvec, first, tol=1e-14, max_iters=iterations)
    assert result.iterations == len(held) == iterations
    assert max(h - m for m, h in enumerate(held, start=1)) <= rows - 1 + 2, held
