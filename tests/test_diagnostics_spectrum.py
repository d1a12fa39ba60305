"""Lanczos, power iteration and Hutchinson on real loss Hessians, against explicit Hessians.

Three problems: a small tanh MLP (full Hessian from ``torch.func.hessian``), L2-regularized
logistic regression (closed form) and matrix sensing ``f(X) = 1/2 ||X X^T - M||_F^2`` (full Hessian
from ``torch.func.hessian`` of the formula).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optbench.diagnostics.eigen import lanczos, power_iteration
from optbench.diagnostics.hvp import LossHessian
from optbench.diagnostics.precondition import adam_preconditioner, preconditioned
from optbench.diagnostics.trace import hutchinson_trace, hutchpp_trace
from optbench.diagnostics.vectors import FlatLayout, random_vector

DTYPE = torch.float64
LAMBDA = 1e-2  # logistic regression's L2 penalty


pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass
class Problem:
    hessian: LossHessian
    explicit: Callable[[], Tensor]  # the full Hessian (dim x dim) at the current parameters


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mse(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    x, y = batch
    return (model(x) - y).pow(2).mean()


def _examples(batch: tuple[Tensor, ...]) -> int:
    return len(batch[0])


class _Bound(nn.Module):
    """``loss_fn(model, batch)`` as a module, for ``torch.func.functional_call`` (the reference)."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, Any], Tensor]) -> None:
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch: Any) -> Tensor:
        return self.loss_fn(self.model, batch)


def mlp_problem() -> Problem:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3)
    )
    model = model.to(DTYPE)  # 419 parameters
    g = _generator(1)
    data = [
        (torch.randn(n, 5, generator=g, dtype=DTYPE), torch.randn(n, 3, generator=g, dtype=DTYPE))
        for n in (40, 24)
    ]
    hessian = LossHessian(model, _mse, data, weight_fn=_examples, train=False, method="jvp")
    named = dict(model.named_parameters())
    layout, bound = FlatLayout.of(named), _Bound(model, _mse)

    def total(flat: Tensor) -> Tensor:
        params = {f"model.{k}": t for k, t in layout.unflatten(flat).items()}
        losses = [torch.func.functional_call(bound, params, (b,)) * len(b[0]) for b in data]
        return sum(losses) / sum(len(b[0]) for b in data)

    return Problem(hessian, lambda: torch.func.hessian(total)(layout.flatten(named).detach()))


def logistic_problem() -> Problem:
    g = _generator(2)
    d, n = 20, 300
    x = torch.randn(n, d, generator=g, dtype=DTYPE)
    y = (torch.rand(n, generator=g, dtype=DTYPE) < torch.sigmoid(x[:, 0] - x[:, 1])).to(DTYPE)
    model = nn.Linear(d, 1, bias=False).to(DTYPE)
    with torch.no_grad():
        model.weight.copy_(0.5 * torch.randn(1, d, generator=g, dtype=DTYPE))

    def loss(m: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        inputs, labels = batch
        data_term = F.binary_cross_entropy_with_logits(m(inputs).squeeze(-1), labels)
        return data_term + 0.5 * LAMBDA * m.weight.pow(2).sum()

    data = [(x[:100], y[:100]), (x[100:], y[100:])]
    hessian = LossHessian(model, loss, data, weight_fn=_examples, train=False, method="jvp")

    def explicit() -> Tensor:
        s = torch.sigmoid(x @ model.weight.detach().squeeze(0))
        return (x.T * (s * (1 - s))) @ x / n + LAMBDA * torch.eye(d, dtype=DTYPE)

    return Problem(hessian, explicit)


class _Factor(nn.Module):
    def __init__(self, x: Tensor) -> None:
        super().__init__()
        self.x = nn.Parameter(x)


def matrix_sensing_problem() -> Problem:
    g = _generator(3)
    n, r = 10, 3
    u = torch.randn(n, r, generator=g, dtype=DTYPE)
    target = u @ u.T
    x0 = u + 0.3 * torch.randn(n, r, generator=g, dtype=DTYPE)

    def f(x: Tensor) -> Tensor:
        return 0.5 * (x @ x.T - target).pow(2).sum()

    model = _Factor(x0.clone())
    hessian = LossHessian(model, lambda m, t: f(m.x), [target], train=False, method="jvp")
    return Problem(hessian, lambda: torch.func.hessian(f)(model.x.detach()).reshape(n * r, n * r))


PROBLEMS = {
    "mlp": mlp_problem,
    "logistic": logistic_problem,
    "matrix_sensing": matrix_sensing_problem,
}


@pytest.fixture(params=list(PROBLEMS), scope="module")
def problem(request: pytest.FixtureRequest) -> Problem:
    return PROBLEMS[request.param]()


def start(hessian: LossHessian, seed: int = 0) -> Tensor:
    return random_vector(hessian.dim, dtype=DTYPE, generator=_generator(seed))


def test_lanczos_top3_matches_eigvalsh(problem: Problem) -> None:
    h = problem.hessian
    before = h.num_hvps
    result = lanczos(h.matvec, start(h), k=3, tol=1e-5)
    explicit = problem.explicit()
    expected = torch.linalg.eigvalsh(explicit).flip(0)[:3]
    assert result.converged
    torch.testing.assert_close(result.eigenvalues, expected, rtol=1e-4, atol=0)
    assert result.num_matvecs == h.num_hvps - before == result.iterations
    ritz = explicit @ result.eigenvectors - result.eigenvectors * result.eigenvalues
    assert float(ritz.norm(dim=0).max()) < 1e-3 * float(expected.abs().max())


def test_hutchinson_trace_is_within_its_standard_error(problem: Problem) -> None:
    h = problem.hessian
    estimate = hutchinson_trace(h.matvec, h.dim, dtype=DTYPE, generator=_generator(4))
    assert abs(estimate.value - float(problem.explicit().trace())) < 4 * estimate.stderr
    assert estimate.num_matvecs == 100


@pytest.mark.parametrize("make", [logistic_problem, matrix_sensing_problem])
@pytest.mark.parametrize("seed", range(3))
def test_hutchinson_trace_within_5_percent(make: Callable[[], Problem], seed: int) -> None:
    # Their standard error with the default 100 probes is 1-1.5%. (The MLP's is ~6%: a Hessian
    # with much off-diagonal mass relative to its trace needs more probes.)
    problem = make()
    h = problem.hessian
    estimate = hutchinson_trace(h.matvec, h.dim, dtype=DTYPE, generator=_generator(seed))
    assert estimate.value == pytest.approx(float(problem.explicit().trace()), rel=0.05)


def test_power_iteration_warm_start_needs_fewer_hvps() -> None:
    h = mlp_problem().hessian
    first = power_iteration(h.matvec, start(h), tol=1e-6, max_iters=500)
    with torch.no_grad():  # move a little, as between two probes of a training run
        for p in h.parameters():
            p.add_(1e-3 * torch.randn(p.shape, generator=_generator(5), dtype=DTYPE))
    cold = power_iteration(h.matvec, start(h, seed=6), tol=1e-6, max_iters=500)
    warm = power_iteration(h.matvec, first.eigenvectors[:, 0], tol=1e-6, max_iters=500)
    assert cold.converged and warm.converged
    assert warm.num_matvecs < cold.num_matvecs / 2
    assert float(warm.eigenvalues[0]) == pytest.approx(float(cold.eigenvalues[0]), rel=1e-4)


def test_preconditioned_top_eigenvalue_matches_explicit_matrix() -> None:
    problem = mlp_problem()
    h = problem.hessian
    optimizer = torch.optim.Adam(h.parameters(), lr=1e-2)
    for _ in range(5):
        for p, g in zip(h.parameters(), h.layout.unflatten(h.gradient()).values(), strict=True):
            p.grad = g.clone()
        optimizer.step()
    diag = adam_preconditioner(optimizer, h.parameters())
    result = lanczos(preconditioned(h.matvec, diag), start(h), k=1, tol=1e-6)
    scale = diag.rsqrt()
    explicit = scale[:, None] * problem.explicit() * scale[None, :]
    expected = torch.linalg.eigvalsh(explicit)[-1]
    assert float(result.eigenvalues[0]) == pytest.approx(float(expected), rel=1e-6)
    assert float(result.eigenvalues[0]) > 10 * float(torch.linalg.eigvalsh(problem.explicit())[-1])


@pytest.mark.parametrize("make", [mlp_problem, logistic_problem, matrix_sensing_problem])
@pytest.mark.parametrize("seed", range(5))
def test_hutchpp_trace_within_5_percent_with_the_default_budget(
    make: Callable[[], Problem], seed: int
) -> None:
    """The probe's default, 300 HVPs of Hutch++, gives the trace within 5%, also for the MLP at
    initialisation, whose indefinite Hessian has a trace of only a fifth of its nuclear norm."""
    problem = make()
    h = problem.hessian
    estimate = hutchpp_trace(h.matvec, h.dim, dtype=DTYPE, generator=_generator(seed))
    assert estimate.num_matvecs <= 300  # fewer when the Hessian is smaller than the sketch
    assert estimate.value == pytest.approx(float(problem.explicit().trace()), rel=0.05)
