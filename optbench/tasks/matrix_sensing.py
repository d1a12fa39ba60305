"""Low-rank matrix sensing with a factorised model (docs/references.md §4.1).

Recover a rank-r PSD matrix M* ∈ ℝ^{n×n} from m linear measurements yᵢ = ⟨Aᵢ, M*⟩ with Gaussian
sensing matrices (i.i.d. N(0, 1) entries), by minimising

    f = (1/2m) Σᵢ (⟨Aᵢ, M̂⟩ − yᵢ)²,   M̂ = XXᵀ (symmetric) or FGᵀ (asymmetric), X, F, G ∈ ℝ^{n×k}.

Since E⟨A, Δ⟩² = ‖Δ‖²_F for such A, the population loss (``m: null``) is ½‖M̂ − M*‖²_F.
M* = Q diag(σ) Qᵀ with Q a random orthonormal n×r basis and σ spaced linearly from 1 down to
1/condition. Factors start with i.i.d. N(0, α²) entries, α = ``init_scale``: the setting of
"How Over-Parameterization Slows Down Gradient Descent in Matrix Sensing" (Xiong, Ding, Du), where
k = r converges linearly, k > r (symmetric) only at a sublinear rate, and the asymmetric
parameterisation linearly at a rate that depends on α.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from optbench.contract import EVAL_LOSS, Batch, ParamRole, Task
from optbench.errors import OptbenchError
from optbench.tasks.streams import FullBatchStream


class Factorization(nn.Module):
    def __init__(self, n: int, k: int, symmetric: bool, init_scale: float) -> None:
        super().__init__()
        self.x = nn.Parameter(torch.randn(n, k) * init_scale)
        self.y = None if symmetric else nn.Parameter(torch.randn(n, k) * init_scale)

    def forward(self) -> torch.Tensor:
        return self.x @ (self.x if self.y is None else self.y).T


class MatrixSensing(Task):
    """Recover a low-rank PSD matrix from Gaussian measurements with a factorised model XXᵀ or FGᵀ."""

    def __init__(
        self,
        n: int = 20,
        r: int = 2,
        k: int = 2,
        m: int | None = None,
        parameterization: Literal["symmetric", "asymmetric"] = "symmetric",
        init_scale: float = 1e-3,
        condition: float = 1.0,
        data_seed: int = 0,
    ) -> None:
        if not 1 <= r <= n:
            raise OptbenchError(f"task.r={r} must be between 1 and task.n={n}")
        if k < r:
            raise OptbenchError(
                f"task.k={k} is below task.r={r}: the search rank must be at least the true rank"
            )
        if m is not None and m < 1:
            raise OptbenchError(f"task.m={m} must be a positive number of measurements, or null")
        if init_scale <= 0 or condition < 1:
            raise OptbenchError("task.init_scale must be > 0 and task.condition >= 1")
        self.n, self.r, self.k, self.m = n, r, k, m
        self.symmetric = parameterization == "symmetric"
        self.init_scale, self.condition, self.data_seed = init_scale, condition, data_seed

    def prepare(self, device: torch.device, dtype: torch.dtype) -> None:
        generator = torch.Generator().manual_seed(self.data_seed)
        basis, _ = torch.linalg.qr(torch.randn(self.n, self.r, generator=generator, dtype=torch.float64))
        sigma = torch.linspace(1.0, 1.0 / self.condition, self.r, dtype=torch.float64)
        target = (basis * sigma) @ basis.T
        self.target = target.to(device=device, dtype=dtype)
        self.sensing = None
        if self.m is not None:
            a = torch.randn(self.m, self.n * self.n, generator=generator, dtype=torch.float64)
            self.sensing = (a.to(device, dtype), (a @ target.flatten()).to(device, dtype))

    def build_model(self) -> nn.Module:
        return Factorization(self.n, self.k, self.symmetric, self.init_scale)

    def param_roles(self, model: nn.Module) -> dict[str, ParamRole]:
        return {name: ParamRole.MATRIX for name, _ in model.named_parameters()}

    def train_stream(self, seed: int) -> FullBatchStream:
        return FullBatchStream(self.sensing)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        estimate = model()
        if batch is None:
            return 0.5 * (estimate - self.target).square().sum()
        a, y = batch
        return 0.5 * (a @ estimate.flatten() - y).square().mean()

    def work(self, batch: Batch) -> int:
        return 1 if batch is None else len(batch[1])

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        error = model().double() - self.target.double()
        return {
            EVAL_LOSS: 0.5 * error.square().sum().item(),
            "eval/recovery_error": (error.norm() / self.target.double().norm()).item(),
        }

    def probe_batches(self, seed: int, size: int | None = None) -> list[Batch]:
        """The training loss's own measurements (the population loss needs none): the Hessian of
        exactly the objective being minimised."""
        return [self.sensing]
