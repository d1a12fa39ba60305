"""Time one optimizer step on the LLaMA-60M parameter shapes, relative to torch.optim.AdamW.

Shapes (hidden 512, intermediate 1376, 8 layers, vocab 32000, untied embedding and head): per
layer q, k, v, o 512×512, gate and up 1376×512, down 512×1376, two RMSNorm gains of 512; a final
norm; embedding and head 32000×512. Gradients are random and fixed. Everything runs in this one
process; each optimizer's steps alternate with steps of AdamW(foreach=True) on the same
parameters, and the ratio is of the medians (a shared machine's load then hits both alike).

Element-wise optimizers step on all parameters. Matrix optimizers (SWAN, GaLore, Muon) step on
the 56 hidden matrices only, as in their papers; the "whole model" column adds AdamW's time on
the other parameters (embedding, head, norms) to both sides. GaLore's first step computes the
SVDs (shown as its own row); with ``update_proj_gap=T`` the amortised cost is
``step + (SVD step - step) / T``. Muon runs in its default compute dtype, ``auto``: float32 on a
CPU. Its 5 Newton–Schulz steps are ~335 GFLOP of float32 matmuls, so at ~80 GFLOP/s a thread its
step stays well above AdamW's; the goal (issue 18) is within 10x AdamW's, whole model.

    python benchmarks/optimizer_step.py              # about a minute, one thread
    python benchmarks/optimizer_step.py --reps 1     # quicker, noisier
    python benchmarks/optimizer_step.py --threads 2  # all cores of an idle 2-core machine
    python benchmarks/optimizer_step.py --only muon  # one optimizer's row(s)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from optbench.optimizers.ademamix import AdEMAMix
from optbench.optimizers.galore import GaLoreAdamW
from optbench.optimizers.lion import Lion
from optbench.optimizers.muon import Muon
from optbench.optimizers.sign import SignSGD, Signum
from optbench.optimizers.swan import SWAN

HIDDEN, INTERMEDIATE, LAYERS, VOCAB = 512, 1376, 8, 32000
GALORE_GAP = 200  # update_proj_gap of the GaLore LLaMA-60M script, for the amortised line
SLOW_S = 2.0

Params = list[torch.nn.Parameter]
MakeOpt = Callable[[Params], torch.optim.Optimizer]


def llama60m_params(seed: int = 0) -> tuple[Params, Params]:
    """(hidden matrices, everything else), each parameter with a fixed random gradient."""
    gen = torch.Generator().manual_seed(seed)

    def param(*shape: int) -> torch.nn.Parameter:
        p = torch.nn.Parameter(torch.randn(*shape, generator=gen) * 0.02)
        p.grad = torch.randn(*shape, generator=gen) * 1e-3
        return p

    layer_shapes = [(HIDDEN, HIDDEN)] * 4 + [(INTERMEDIATE, HIDDEN)] * 2 + [(HIDDEN, INTERMEDIATE)]
    matrices = [param(*shape) for _ in range(LAYERS) for shape in layer_shapes]
    rest = [param(VOCAB, HIDDEN), param(VOCAB, HIDDEN)]
    rest += [param(HIDDEN) for _ in range(2 * LAYERS + 1)]
    return matrices, rest


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(make: MakeOpt, params: Params, warmup: int, reps: int) -> tuple[float, float, float]:
    """Seconds of the first step, median seconds of a step, and median seconds of an AdamW step
    on the same parameters. Steps of the two alternate, so that the ratio survives a machine
    whose load changes. When the first step takes over ``SLOW_S`` (SWAN, GaLore's SVD), one
    timed pair follows and no warmup, to keep the whole run short."""
    opt, adamw = make(params), ADAMW(params)
    first = seconds(opt.step)
    adamw.step()  # allocates its state
    if first > SLOW_S:
        warmup, reps = 0, 1
    for _ in range(warmup):
        opt.step()
        adamw.step()
    pairs = [(seconds(opt.step), seconds(adamw.step)) for _ in range(reps)]
    return first, statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


ADAMW: MakeOpt = lambda p: torch.optim.AdamW(p, foreach=True)
ELEMENTWISE: dict[str, MakeOpt] = {
    "sgd (momentum 0.9)": lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, foreach=True),
    "adam": lambda p: torch.optim.Adam(p, foreach=True),
    "adamw": lambda p: torch.optim.AdamW(p, foreach=True),
    "adafactor": lambda p: torch.optim.Adafactor(p, foreach=True),
    "lion": Lion,
    "ademamix": AdEMAMix,
    "signsgd": SignSGD,
    "signum": Signum,
}
MATRIX: dict[str, MakeOpt] = {
    "swan": SWAN,
    "galore": lambda p: GaLoreAdamW(p, update_proj_gap=10**9),  # SVD at the first step only
    "muon": Muon,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="timed steps per optimizer (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps after the first")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared machine, multi-threaded timings swing 10x)",
    )
    parser.add_argument(
        "--only",
        choices=[*ELEMENTWISE, *MATRIX],
        metavar="NAME",
        help=f"time this optimizer only (one of: {', '.join([*ELEMENTWISE, *MATRIX])})",
    )
    args = parser.parse_args()
    chosen = lambda table: {k: v for k, v in table.items() if args.only in (None, k)}
    torch.set_num_threads(args.threads)
    matrices, rest = llama60m_params()
    everything = matrices + rest
    millions = lambda ps: sum(p.numel() for p in ps) / 1e6
    print(
        f"LLaMA-60M shapes: {millions(everything):.1f}M parameters, {len(matrices)} hidden matrices "
        f"with {millions(matrices):.1f}M; torch {torch.__version__}, {torch.get_num_threads()} "
        f"threads; after the first step, {args.warmup} untimed, then the median of {args.reps}"
    )
    adamw_rest = measure(ADAMW, rest, args.warmup, args.reps)[1]
    header = (
        f"{'optimizer':<18} {'params':<9} {'ms/step':>9} {'AdamW ms':>9} {'x AdamW':>8}"
        f" {'whole model':>12}"
    )
    print(header, "-" * len(header), sep="\n")

    def row(name: str, scope: str, t: float, base: float, whole: float | None = None) -> None:
        tail = "" if whole is None else f"{whole:12.2f}"
        print(f"{name:<18} {scope:<9} {t * 1e3:9.1f} {base * 1e3:9.1f} {t / base:8.2f} {tail}")

    for name, make in chosen(ELEMENTWISE).items():
        _, t, base = measure(make, everything, args.warmup, args.reps)
        row(name, "all", t, base)
    for name, make in chosen(MATRIX).items():
        first, t, base = measure(make, matrices, args.warmup, args.reps)
        row(name, "matrices", t, base, (t + adamw_rest) / (base + adamw_rest))
        if name == "galore":  # its first step computes the SVDs
            row("galore (SVD step)", "matrices", first, base)
            amortised = t + (first - t) / GALORE_GAP
            whole = (amortised + adamw_rest) / (base + adamw_rest)
            row(f"galore (T={GALORE_GAP})", "matrices", amortised, base, whole)
    print(
        f"'AdamW ms': AdamW(foreach=True) on the same parameters, stepped alternately with the row's"
        f" optimizer.\n'whole model': matrix optimizer + AdamW on the rest (embedding, head, norms:"
        f" {adamw_rest * 1e3:.1f} ms), over AdamW on everything."
    )


if __name__ == "__main__":
    main()
