"""Sharpness probes: HVP cost against a gradient; the probe's Lanczos against power iteration.

Three problems, float32 on CPU, each a situation a probe meets in a run:

- ``mlp-init``: a 128-256-256-10 tanh MLP (101,386 parameters), cross-entropy on 2,048 generated
  10-class examples in 4 micro-batches, at initialization: a run's first probe (a cold start);
  its top eigenvalues are within 1% of each other.
- ``mlp-trained``: the same after 300 full-batch GD steps (lr 0.1), where the top eigenvalue
  stands 10% clear of the next; the previous probe was at step 200.
- ``cnn-square``: a two-layer tanh CNN (13,018 parameters), square loss on one-hot targets (Cohen
  et al. 2021's setting) of 1,024 generated 3x8x8 images in 4 micro-batches, after 300 GD steps
  (lr 0.1): progressive sharpening, the top two eigenvalues 2% apart; previous probe at step 200.

1. On ``mlp-trained``: the median time of one HVP by each path (forward-over-reverse; double
   backward rebuilding its graph every product; double backward keeping the graphs; the default,
   ``auto``) over the median time of one gradient (plain ``backward`` over the same
   micro-batches), timed in alternation.
2. lambda_max to a relative error of 1e-3, per problem and random start, against a long Lanczos
   run:
   - Lanczos as the probe runs it: warm-started (``eigen.warm_start``: the previous probe's Ritz
     vector blended with the start) where there was a previous probe, its own stopping rule; the
     HVPs and the error it returned;
   - power iteration from the same random start, as PyHessian runs it: the HVPs until its estimate
     (the Rayleigh quotient) is truly within 1e-3, an oracle's stop (PyHessian's own rule, a
     relative change below 1e-3, stops earlier; its error is shown), at most 200;
   - for reference: power iteration warm-started from the previous probe's vector (the probe's
     ``method=power``), and, like for like from the cold start, the HVPs Lanczos needs before
     its estimate (the Rayleigh-Ritz value on its Krylov vectors) is within 1e-3.

Goals (issue 18): an HVP by the default path costs at most 2.5 gradients; per problem, the probe's
Lanczos takes at most a third of power iteration's HVPs (median over the starts). Like for like
(both cold), the ratio is set by the spectrum: after t HVPs power iteration's error shrinks like
(lambda_2 / lambda_1)^(2t), Lanczos' like exp(-4 t sqrt(gamma)), gamma = (lambda_1 - lambda_2)
/ (lambda_2 - lambda_min), and no method that only multiplies the start by the Hessian does better
than Lanczos. What the probe gains beyond that is the warm start. Measured on one idle core: an
HVP costs 1.6 gradients; the ratios are <0.27, 0.32 and 0.40: on ``cnn-square`` the residual rule
needs 10-12 HVPs even warm-started, as its top eigenvalues are 2% apart.

    python benchmarks/sharpness.py [--threads 1] [--seeds 5] [--repeats 10]   # ~70 s on an idle core
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optbench.diagnostics.eigen import lanczos, power_iteration, warm_start
from optbench.diagnostics.hvp import LossHessian
from optbench.diagnostics.vectors import random_vector

Batch = tuple[Tensor, Tensor]
LossFn = Callable[[nn.Module, Batch], Tensor]
TOL = 1e-3
POWER_CAP = 200  # HVPs power iteration may take before it is reported as ">200"
STEPS, PREVIOUS = 300, 200  # training steps; the previous probe's step


@dataclass
class Problem:
    name: str
    model: nn.Module
    loss_fn: LossFn
    batches: list[Batch]
    previous: Tensor | None  # the previous probe's Ritz vector, None for a first probe

    def hessian(self, **kwargs) -> LossHessian:
        return LossHessian(
            self.model, self.loss_fn, self.batches, weight_fn=examples, train=False, **kwargs
        )


def cross_entropy(model: nn.Module, batch: Batch) -> Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


def square_loss(model: nn.Module, batch: Batch) -> Tensor:
    x, y = batch
    return 0.5 * (model(x) - y).pow(2).sum(dim=1).mean()


def examples(batch: Batch) -> int:
    return len(batch[0])


def mlp_problem(seed: int = 0) -> tuple[nn.Module, list[Batch]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2048, 128, generator=g)
    labels = x @ torch.randn(128, 10, generator=g) + 0.5 * torch.randn(2048, 10, generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(128, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 10)
    )
    return model, list(zip(x.split(512), labels.argmax(dim=1).split(512), strict=True))


def cnn_problem(seed: int = 0) -> tuple[nn.Module, list[Batch]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1024, 3, 8, 8, generator=g)
    classes = (x.flatten(1) @ torch.randn(192, 10, generator=g)).argmax(dim=1)
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(1024, 10),
    )
    targets = F.one_hot(classes, 10).float()
    return model, list(zip(x.split(256), targets.split(256), strict=True))


def gradient(model: nn.Module, loss_fn: LossFn, batches: list[Batch]) -> None:
    """The training gradient, the way the runner takes it: one backward per micro-batch."""
    total = sum(map(examples, batches))
    for batch in batches:
        (loss_fn(model, batch) * examples(batch) / total).backward()


def train(model: nn.Module, loss_fn: LossFn, batches: list[Batch], steps: int) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        optimizer.zero_grad()
        gradient(model, loss_fn, batches)
        optimizer.step()


def problems() -> list[Problem]:
    """The three problems; a previous probe (Lanczos from a seeded start) at step 200."""
    model, batches = mlp_problem()
    found = [Problem("mlp-init", model, cross_entropy, batches, None)]
    for name, (model, batches), loss_fn in (
        ("mlp-trained", mlp_problem(), cross_entropy),
        ("cnn-square", cnn_problem(), square_loss),
    ):
        train(model, loss_fn, batches, PREVIOUS)
        problem = Problem(name, model, loss_fn, batches, None)
        start = random_vector(problem.hessian().dim, generator=torch.Generator().manual_seed(0))
        problem.previous = lanczos(problem.hessian().matvec, start, tol=TOL).eigenvectors[:, 0]
        train(model, loss_fn, batches, STEPS - PREVIOUS)
        found.append(problem)
    return found


def hvp_costs(problem: Problem, repeats: int) -> tuple[dict[str, float], str]:
    """Median seconds of one gradient and of one HVP per path, timed in alternation; the path
    ``auto`` took."""
    v = random_vector(problem.hessian().dim, generator=torch.Generator().manual_seed(0))
    auto = problem.hessian()
    kept = problem.hessian(method="double_backward")
    paths: dict[str, Callable[[], object]] = {
        "gradient (backward)": lambda: gradient(problem.model, problem.loss_fn, problem.batches),
        "HVP, jvp (forward-over-reverse)": lambda: problem.hessian(method="jvp").matvec(v),
        "HVP, double backward, rebuilt": lambda: problem.hessian(
            method="double_backward", cache_bytes=0
        ).matvec(v),
        "HVP, double backward, kept": lambda: kept.matvec(v),
        "HVP, default (auto)": lambda: auto.matvec(v),
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    for repeat in range(repeats + 1):  # the first round warms up (and builds the kept graphs)
        for name, fn in paths.items():
            start = time.perf_counter()
            fn()
            if repeat:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}, auto.method


class Recorder:
    """A matvec that keeps every (v, A v) pair."""

    def __init__(self, matvec: Callable[[Tensor], Tensor]) -> None:
        self.matvec, self.inputs, self.outputs = matvec, [], []

    def __call__(self, v: Tensor) -> Tensor:
        out = self.matvec(v)
        self.inputs.append(v.clone())
        self.outputs.append(out)
        return out

    def rayleigh_ritz(self) -> list[float]:
        """The best lambda_max estimate from the first m Krylov vectors, for each m."""
        q, aq = torch.stack(self.inputs).double(), torch.stack(self.outputs).double()
        projected = q @ aq.T
        projected = (projected + projected.T) / 2
        return [float(torch.linalg.eigvalsh(projected[:m, :m])[-1]) for m in range(1, len(q) + 1)]


def pyhessian_stop(estimates: list[float]) -> int:
    """How many HVPs PyHessian's rule takes: the first relative change below TOL, else all."""
    for i in range(1, len(estimates)):
        if abs(estimates[i] - estimates[i - 1]) < TOL * abs(estimates[i - 1]):
            return i + 1
    return len(estimates)


def first_within(estimates: list[float], lam: float) -> int | None:
    """How many HVPs until the estimate is within TOL of ``lam`` (None: not in these)."""
    return next((i + 1 for i, e in enumerate(estimates) if abs(e - lam) / lam <= TOL), None)


class _Within(Exception):
    """Power iteration's estimate is within TOL: no need for more HVPs."""


def power_to_tol(matvec: Callable[[Tensor], Tensor], start: Tensor, lam: float) -> list[float]:
    """Power iteration's estimates, HVP by HVP, until within TOL of ``lam`` or POWER_CAP."""
    estimates: list[float] = []

    def recorded(v: Tensor) -> Tensor:  # power iteration's vectors have unit norm
        if estimates and abs(estimates[-1] - lam) <= TOL * lam:
            raise _Within
        out = matvec(v)
        estimates.append(float(v @ out))
        return out

    try:
        power_iteration(recorded, start, tol=0.0, max_iters=POWER_CAP)
    except _Within:
        pass
    return estimates


def count(n: int | None, cap: int) -> str:
    return f">{cap}" if n is None else str(n)


def ratio(lanczos_hvps: int, power_hvps: int | None) -> float:
    """Lanczos' HVPs over power's; a power run that never got there counts as POWER_CAP + 1, so
    the ratio is then an upper bound."""
    return lanczos_hvps / (POWER_CAP + 1 if power_hvps is None else power_hvps)


def solve(problem: Problem, seeds: int) -> tuple[float, list[tuple], list[float], list[float]]:
    hessian = problem.hessian()
    reference = lanczos(
        hessian.matvec,
        random_vector(hessian.dim, generator=torch.Generator().manual_seed(0)),
        tol=1e-6,
        max_iters=300,
    )
    lam = float(reference.eigenvalues[0])
    rows, probe_ratios, cold_ratios = [], [], []
    for seed in range(1, seeds + 1):
        fresh = random_vector(hessian.dim, generator=torch.Generator().manual_seed(seed))
        start = fresh if problem.previous is None else warm_start(problem.previous, fresh)
        result = lanczos(hessian.matvec, start, k=1, tol=TOL)
        error = abs(float(result.eigenvalues[0]) - lam) / lam
        recorder = Recorder(hessian.matvec)
        lanczos(recorder, fresh, k=1, tol=TOL)
        cold, cold_run = first_within(recorder.rayleigh_ritz(), lam), len(recorder.inputs)
        power = power_to_tol(hessian.matvec, fresh, lam)
        power_hvps = first_within(power, lam)
        own = pyhessian_stop(power)
        own_error = abs(power[own - 1] - lam) / lam
        warm_power = None
        if problem.previous is not None:
            warm_power = first_within(power_to_tol(hessian.matvec, problem.previous, lam), lam)
        rows.append(
            (
                seed,
                result.num_matvecs,
                error,
                power_hvps,
                own,
                own_error,
                warm_power,
                count(cold, cold_run),
            )
        )
        probe_ratios.append(ratio(result.num_matvecs, power_hvps))
        cold_ratios.append(ratio(cold_run + 1 if cold is None else cold, power_hvps))
    return lam, rows, probe_ratios, cold_ratios


def summary(ratios: list[float], rows: list[tuple]) -> str:
    bound = "<" if any(row[3] is None for row in rows) else ""
    return f"{bound}{statistics.median(ratios):.2f} (worst {bound}{max(ratios):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="intra-op threads (1: stable timings on a shared machine)",
    )
    parser.add_argument("--seeds", type=int, default=5, help="random starts per problem")
    parser.add_argument("--repeats", type=int, default=10, help="timings per median")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    found = problems()
    trained = found[1]
    seconds, default = hvp_costs(trained, args.repeats)
    grad_s = seconds["gradient (backward)"]
    print(
        f"HVP cost on {trained.name}: {trained.hessian().dim:,} parameters, "
        f"{sum(map(examples, trained.batches)):,} examples in {len(trained.batches)} "
        f"micro-batches, float32, {torch.get_num_threads()} thread(s)"
    )
    print(f"{'cost of one':<36}{'ms':>8}{'/ gradient':>12}")
    for name, s in seconds.items():
        print(f"{name:<36}{s * 1e3:>8.1f}{s / grad_s:>12.2f}")
    print(f"(auto chose {default})\n")

    print(
        "lambda_max to 1e-3: HVPs of Lanczos as the probe runs it (own stopping rule, error "
        "returned),\nof power iteration from the same start (until within 1e-3; PyHessian's "
        "own rule and its error),\nof power iteration warm-started, and of Lanczos from the cold "
        "start until within 1e-3"
    )
    header = (
        f"{'problem':<13}{'start':>6}{'Lanczos':>9}{'error':>9}{'power':>7}{'own':>5}"
        f"{'error':>9}{'warm power':>12}{'cold Lanczos':>14}"
    )
    print(header)
    summaries = []
    for problem in found:
        lam, rows, probe_ratios, cold_ratios = solve(problem, args.seeds)
        for seed, hvps, error, power, own, own_error, warm_power, cold in rows:
            warm = "-" if problem.previous is None else count(warm_power, POWER_CAP)
            print(
                f"{problem.name:<13}{seed:>6}{hvps:>9}{error:>9.1e}{count(power, POWER_CAP):>7}"
                f"{own:>5}{own_error:>9.1e}{warm:>12}{cold:>14}"
            )
        summaries.append((problem, lam, summary(probe_ratios, rows), summary(cold_ratios, rows)))

    print(
        f"\n{'problem':<13}{'lambda_max':>11}{'start':>7}"
        f"{'probe Lanczos / power':>26}{'like for like (cold)':>26}"
    )
    for problem, lam, probe, cold in summaries:
        kind = "cold" if problem.previous is None else "warm"
        print(f"{problem.name:<13}{lam:>11.4g}{kind:>7}{probe:>26}{cold:>26}")
    print(
        f"\nHVP / gradient, default path: {seconds['HVP, default (auto)'] / grad_s:.2f} (goal <= 2.5)"
        "\nHVPs to 1e-3, probe Lanczos / power iteration: median over starts per problem above "
        "(goal <= 0.33)"
    )


if __name__ == "__main__":
    main()
