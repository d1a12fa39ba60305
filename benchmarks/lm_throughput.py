"""Tokens/s of an optbench run of llama_tiny against a minimal hand-written PyTorch loop.

Both train the same model (same init), on the same step batches of the same task stream, with
AdamW at the same settings, in this one process; runs alternate and medians are reported. The
optbench figure is the wall time of its whole training loop (schedule, loss accumulation,
metrics, logging and the progress bar) less its evaluations and checkpoints, which any loop pays
alike; optbench's own ``perf/tokens_per_second`` (its training clock) is printed beside it.

    python benchmarks/lm_throughput.py [STEPS] [REPEATS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from optbench.loggers.jsonl import read_metrics
from optbench.runner.build import build_task
from optbench.runner.config import compose
from optbench.runner.execute import execute
from optbench.runner.loop import Trainer
from optbench.runner.seeding import derive_seed
from optbench.runner.spec import resolve

OVERRIDES = ["task=llama_tiny", "optimizer=adamw", "logger=none", "task.eval_tokens=2048"]


def bare_loop(steps: int) -> float:
    """The loop a researcher would write: tokens per second."""
    cfg = compose(OVERRIDES)
    task = build_task(cfg.task)
    task.prepare(torch.device("cpu"), torch.float32)
    torch.manual_seed(derive_seed(cfg.seed, "model"))
    model = task.build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=0.01)
    stream = task.train_stream(derive_seed(cfg.seed, "data"))
    tokens, start = 0, time.perf_counter()
    for _ in range(steps):
        micro_batches = next(stream)
        total = sum(task.loss_weight(mb) for mb in micro_batches)
        for mb in micro_batches:
            (task.loss(model, mb) * (task.loss_weight(mb) / total)).backward()
            tokens += task.work(mb)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return tokens / (time.perf_counter() - start)


def optbench_run(steps: int) -> tuple[float, float]:
    """(tokens/s over the wall time of the training loop less its evaluations and checkpoints,
    optbench's own training-clock figure)."""
    cfg = compose([*OVERRIDES, f"train.steps={steps}", f"train.eval_every={steps}",
                   f"train.checkpoint_every={steps}"])
    loop_seconds: list[float] = []
    aside = [0.0]  # seconds in evaluations and checkpoints: the same cost in any loop
    originals = {name: getattr(Trainer, name) for name in ("run", "evaluate", "checkpoint")}

    def timed(name):
        def wrapper(self, *args):
            start = time.perf_counter()
            result = originals[name](self, *args)
            elapsed = time.perf_counter() - start
            if name == "run":
                loop_seconds.append(elapsed - aside[0])
            else:
                aside[0] += elapsed
            return result
        return wrapper

    for name in originals:
        setattr(Trainer, name, timed(name))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            execute(resolve(cfg, Path(tmp) / "run", task="llama_tiny", optimizer="adamw"))
            records = read_metrics(Path(tmp) / "run" / "metrics.jsonl")
    finally:
        for name, original in originals.items():
            setattr(Trainer, name, original)
    tokens = records[-1]["tokens"]
    clocked = [r for r in records if "perf/step_seconds" in r]
    seconds, previous = 0.0, 0
    for r in clocked:
        seconds += r["perf/step_seconds"] * (r["step"] - previous)
        previous = r["step"]
    return tokens / loop_seconds[0], tokens / seconds


def main(steps: int = 60, repeats: int = 3) -> None:
    bare, wall, clock = [], [], []
    bare_loop(5)  # warm-up: allocator, kernels
    for _ in range(repeats):
        bare.append(bare_loop(steps))
        w, c = optbench_run(steps)
        wall.append(w)
        clock.append(c)
    b, w, c = (statistics.median(x) for x in (bare, wall, clock))
    print(f"llama_tiny, AdamW, {steps} steps × {repeats} alternating runs, "
          f"{torch.get_num_threads()} threads (medians)")
    print(f"{'':34}{'tokens/s':>10}{'ratio':>8}")
    print(f"{'hand-written loop':34}{b:>10.0f}{1.0:>8.3f}")
    print(f"{'optbench, training loop wall time':34}{w:>10.0f}{w / b:>8.3f}")
    print(f"{'optbench, its training clock':34}{c:>10.0f}{c / b:>8.3f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
