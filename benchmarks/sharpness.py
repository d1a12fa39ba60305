"""Sharpness probes: HVP cost against a gradient; Lanczos against PyHessian's power iteration.

One process, one model (a tanh MLP, ~100k parameters, on generated 10-class data, trained by 300
full-batch GD steps so that its Hessian has the outliers of a trained network), float32 on CPU:

1. median time of one HVP (forward-over-reverse and double backward) / median time of one gradient
   (plain ``backward`` over the same micro-batches);
2. for lambda_max, against a long Lanczos run, per random start:
   - Lanczos with its own stopping rule (top-1, residual <= 1e-3 relative) and power iteration with
     PyHessian's (stop when the estimate changes by < 1e-3 relative, at most 100 iterations): HVPs,
     seconds and the error actually reached;
   - the HVPs each method needs before its estimate is truly within 1e-3: the Rayleigh-Ritz value
     on the Krylov vectors Lanczos has built, the Rayleigh quotient of power iteration's vector.

Goals: an HVP costs at most 3 gradients; Lanczos needs at most a third of power iteration's HVPs
to reach 1e-3. The second depends on the spectrum: after t HVPs power iteration's error shrinks
like (lambda_2 / lambda_1)^(2t), Lanczos' like exp(-4 t sqrt(gamma)), gamma = (lambda_1 - lambda_2)
/ (lambda_2 - lambda_min). On this model at initialization (top eigenvalues within 1%) power
iteration misses 1e-3 within 100 HVPs; after 100 steps (a wide gap) it needs only about twice
Lanczos' HVPs.

    python benchmarks/sharpness.py [--threads 1] [--seeds 5] [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optbench.diagnostics.eigen import lanczos, power_iteration
from optbench.diagnostics.hvp import LossHessian
from optbench.diagnostics.vectors import random_vector

Batch = tuple[Tensor, Tensor]
TOL = 1e-3


def cross_entropy(model: nn.Module, batch: Batch) -> Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


def examples(batch: Batch) -> int:
    return len(batch[0])


def setup(seed: int = 0) -> tuple[nn.Module, list[Batch]]:
    """A 128-256-256-10 tanh MLP (101,386 parameters), 2,048 examples in 4 micro-batches."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2048, 128, generator=g)
    labels = x @ torch.randn(128, 10, generator=g) + 0.5 * torch.randn(2048, 10, generator=g)
    batches = list(zip(x.split(512), labels.argmax(dim=1).split(512), strict=True))
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(128, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 10)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(300):
        optimizer.zero_grad()
        gradient(model, batches)
        optimizer.step()
    return model, batches


def gradient(model: nn.Module, batches: list[Batch]) -> None:
    """The training gradient, the way the runner takes it: one backward per micro-batch."""
    total = sum(map(examples, batches))
    for batch in batches:
        (cross_entropy(model, batch) * examples(batch) / total).backward()


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Recorder:
    """A matvec that keeps every (v, A v) pair and the time since the first call."""

    def __init__(self, matvec: Callable[[Tensor], Tensor]) -> None:
        self.matvec, self.inputs, self.outputs, self.seconds = matvec, [], [], []
        self.began = time.perf_counter()

    def __call__(self, v: Tensor) -> Tensor:
        out = self.matvec(v)
        self.inputs.append(v.clone())
        self.outputs.append(out)
        self.seconds.append(time.perf_counter() - self.began)
        return out

    def rayleigh_quotients(self) -> list[float]:
        """Power iteration's estimate after each HVP (its vectors have unit norm)."""
        return [float(v @ av) for v, av in zip(self.inputs, self.outputs, strict=True)]

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


def first_within(estimates: list[float], lam: float) -> str:
    """How many HVPs until the estimate is within TOL of ``lam`` (">n" if never in n HVPs)."""
    hits = (i + 1 for i, e in enumerate(estimates) if abs(e - lam) / lam <= TOL)
    return str(next(hits, f">{len(estimates)}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="intra-op threads (1: stable timings on a shared machine)",
    )
    parser.add_argument("--seeds", type=int, default=5, help="random starts per solver")
    parser.add_argument("--repeats", type=int, default=10, help="timings per median")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, batches = setup()
    hessians = {
        method: LossHessian(
            model, cross_entropy, batches, weight_fn=examples, train=False, method=method
        )
        for method in ("jvp", "double_backward")
    }
    hessian = hessians["jvp"]
    v = random_vector(hessian.dim, generator=torch.Generator().manual_seed(0))
    grad_s = median_seconds(lambda: gradient(model, batches), args.repeats)
    hvp_s = {m: median_seconds(lambda h=h: h.matvec(v), args.repeats) for m, h in hessians.items()}

    reference = lanczos(hessian.matvec, v, k=1, tol=1e-6, max_iters=300)
    lam = float(reference.eigenvalues[0])
    rows = []
    needed: dict[str, list[int]] = {"Lanczos": [], "power": []}
    for seed in range(1, args.seeds + 1):
        start = random_vector(hessian.dim, generator=torch.Generator().manual_seed(seed))
        recorder = Recorder(hessian.matvec)
        result = lanczos(recorder, start, k=1, tol=TOL)
        stop = result.num_matvecs
        accurate = first_within(recorder.rayleigh_ritz(), lam)
        error = abs(float(result.eigenvalues[0]) - lam) / lam
        rows.append(("Lanczos", seed, stop, recorder.seconds[-1], error, accurate))
        recorder = Recorder(hessian.matvec)
        power_iteration(recorder, start, tol=0.0, max_iters=100)  # rules applied afterwards
        estimates = recorder.rayleigh_quotients()
        stop = pyhessian_stop(estimates)
        accurate = first_within(estimates, lam)
        error = abs(estimates[stop - 1] - lam) / lam
        rows.append(("power", seed, stop, recorder.seconds[stop - 1], error, accurate))
    for name, _, _, _, _, accurate in rows:
        needed[name].append(int(accurate.lstrip(">")) + accurate.startswith(">"))

    print(
        f"model: tanh MLP, {hessian.dim:,} parameters, {sum(map(examples, batches)):,} examples "
        f"in {len(batches)} micro-batches, float32, {torch.get_num_threads()} thread(s)"
    )
    print(
        f"reference lambda_max = {lam:.6g} ({reference.num_matvecs} Lanczos iterations, "
        f"residual {float(reference.residuals[0]):.1e})\n"
    )
    print(f"{'cost of one':<28}{'ms':>10}{'/ gradient':>12}")
    print(f"{'gradient (backward)':<28}{grad_s * 1e3:>10.1f}{1.0:>12.2f}")
    for method, seconds in hvp_s.items():
        print(f"{'HVP, ' + method:<28}{seconds * 1e3:>10.1f}{seconds / grad_s:>12.2f}")
    print(f"\n{'':<10}{'':>6}{'own stopping rule':^32}{'HVPs until':>12}")
    print(
        f"{'solver':<10}{'start':>6}{'HVPs':>8}{'seconds':>10}{'rel. error':>14}{'within 1e-3':>12}"
    )
    for name, seed, hvps, seconds, error, accurate in rows:
        print(f"{name:<10}{seed:>6}{hvps:>8}{seconds:>10.2f}{error:>14.1e}{accurate:>12}")
    ratio = statistics.median(needed["Lanczos"]) / statistics.median(needed["power"])
    print(
        f"\nHVP / gradient: {hvp_s['jvp'] / grad_s:.2f} jvp, "
        f"{hvp_s['double_backward'] / grad_s:.2f} double backward (goal <= 3)"
    )
    print(
        f"HVPs until within 1e-3, Lanczos / power iteration (medians): {ratio:.2f} (goal <= 0.33)"
    )


if __name__ == "__main__":
    main()
