"""The sharpness probe a run takes every few steps (``diagnostics=sharpness``).

Each probe builds the Hessian of the task's loss on its fixed probe batches at the current
weights and logs the top eigenvalues (``sharpness/lambda_max``, ``sharpness/lambda_{i}``), the
optimizer's stability threshold, Adam's preconditioned sharpness, the HVPs and seconds spent, and
optionally the Hessian trace. Each solve warm-starts from the last probe's eigenvector(s) of the
same operator (the Hessian; Adam's preconditioned Hessian): power iteration from that vector alone,
Lanczos from it blended with a fresh seeded vector (:func:`optbench.diagnostics.eigen.warm_start`).
The vectors go into checkpoints, so a resumed run repeats the same solves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from optbench.contract import LAMBDA_MAX, PRECONDITIONED, THRESHOLD, TRACE, Task
from optbench.diagnostics.eigen import EigenResult, lanczos, power_iteration, warm_start
from optbench.diagnostics.hvp import LossHessian
from optbench.diagnostics.precondition import adam_preconditioner, preconditioned
from optbench.diagnostics.thresholds import stability_threshold
from optbench.diagnostics.trace import hutchinson_trace, hutchpp_trace
from optbench.diagnostics.vectors import random_vector
from optbench.errors import OptbenchError


@dataclass
class SharpnessProbe:
    every: int = 100
    k: int = 1
    method: Literal["lanczos", "power"] = "lanczos"
    tol: float = 1e-3
    max_iters: int = 100
    probe_size: int | None = None
    model_mode: Literal["eval", "train"] = "eval"
    hvp: Literal["jvp", "double_backward", "auto"] = "auto"
    trace: bool = False
    trace_probes: int = 300  # Hessian-vector products spent on the trace
    trace_method: Literal["hutchpp", "hutchinson"] = "hutchpp"
    preconditioned: bool = True
    seed: int = 0  # set by the runner from the run seed
    # the last probe's eigenvector (power) or sum of the top-k Ritz vectors (Lanczos), per operator
    _vector: torch.Tensor | None = field(default=None, repr=False)
    _preconditioned_vector: torch.Tensor | None = field(default=None, repr=False)
    _batches: list[Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.every < 1 or self.k < 1 or self.max_iters < 1 or self.trace_probes < 1:
            raise OptbenchError(
                "diagnostics.every, k, max_iters and trace_probes must be positive integers")
        if self.method == "power" and self.k != 1:
            raise OptbenchError(f"diagnostics.method=power finds one eigenvalue; got k={self.k} "
                                "(use method=lanczos for the top k)")
        if self.k > self.max_iters:
            raise OptbenchError(f"diagnostics.k={self.k} exceeds diagnostics.max_iters={self.max_iters}")
        if not 0 < self.tol < 1:
            raise OptbenchError(f"diagnostics.tol={self.tol} must be in (0, 1)")

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def _top(self, matvec, hessian: LossHessian, step: int, previous: torch.Tensor | None) -> EigenResult:
        generator = _cpu_generator(self.seed + step)
        start = random_vector(hessian.dim, dtype=hessian.dtype, device=hessian.device, generator=generator)
        if previous is not None:  # restored from a checkpoint, it is on the CPU
            previous = previous.to(device=hessian.device, dtype=hessian.dtype)
        if self.method == "power":
            return power_iteration(matvec, start if previous is None else previous,
                                   tol=self.tol, max_iters=self.max_iters)
        if previous is not None:
            start = warm_start(previous, start)
        return lanczos(matvec, start, k=self.k, tol=self.tol, max_iters=self.max_iters)

    def __call__(self, task: Task, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> dict[str, float]:
        started = time.perf_counter()
        if self._batches is None:
            self._batches = task.probe_batches(self.seed, self.probe_size)
        hessian = LossHessian(model, task.loss, self._batches, train=self.model_mode == "train",
                              weight_fn=task.loss_weight, method=self.hvp, seed=self.seed)
        top = self._top(hessian.matvec, hessian, step, self._vector)
        self._vector = top.eigenvectors.sum(dim=1)
        metrics = {LAMBDA_MAX: top.eigenvalues[0].item()}
        metrics |= {f"sharpness/lambda_{i}": top.eigenvalues[i].item()
                    for i in range(1, len(top.eigenvalues))}
        metrics |= self._threshold(optimizer)
        if self.preconditioned and _is_adam(optimizer) and optimizer.state:
            diag = adam_preconditioner(optimizer, hessian.parameters())
            top = self._top(preconditioned(hessian.matvec, diag), hessian, step, self._preconditioned_vector)
            self._preconditioned_vector = top.eigenvectors.sum(dim=1)
            metrics[PRECONDITIONED] = top.eigenvalues[0].item()
        if self.trace:
            generator = _cpu_generator(self.seed + step + 1)
            estimate = _TRACE[self.trace_method](
                hessian.matvec, hessian.dim, self.trace_probes,
                dtype=hessian.dtype, device=hessian.device, generator=generator)
            metrics[TRACE] = float(estimate.value)
            metrics["curvature/trace_stderr"] = float(estimate.stderr)
        metrics["sharpness/hvps"] = hessian.num_hvps
        metrics["sharpness/seconds"] = time.perf_counter() - started
        return metrics

    @staticmethod
    def _threshold(optimizer: torch.optim.Optimizer) -> dict[str, float]:
        rates = {group["lr"] for group in optimizer.param_groups}
        if len(rates) != 1:  # one threshold needs one step size (not a role-routed pair)
            return {}
        threshold = stability_threshold(type(optimizer), optimizer.param_groups[0])
        return {} if threshold is None else {THRESHOLD: threshold.value}

    def state_dict(self) -> dict[str, Any]:
        return {"vector": self._vector, "preconditioned_vector": self._preconditioned_vector}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._vector = state["vector"]
        self._preconditioned_vector = state.get("preconditioned_vector")  # absent before warm Lanczos


_TRACE = {
    "hutchinson": lambda matvec, dim, n, **kw: hutchinson_trace(matvec, dim, num_probes=n, **kw),
    "hutchpp": lambda matvec, dim, n, **kw: hutchpp_trace(matvec, dim, num_matvecs=n, **kw),
}


def _cpu_generator(seed: int) -> torch.Generator:
    """A seeded CPU generator: :func:`random_vector` draws on it and moves the vector, so a probe
    on any device starts from the vectors a CPU probe would (a CUDA generator draws others)."""
    return torch.Generator().manual_seed(seed)


def _is_adam(optimizer: torch.optim.Optimizer) -> bool:
    return type(optimizer) in (torch.optim.Adam, torch.optim.AdamW)
