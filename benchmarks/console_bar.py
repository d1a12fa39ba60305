"""What the console progress bar costs a run that logs every step.

Times ``ConsoleSink.log`` drawing into a terminal (rendered into memory, so the terminal's own
speed does not count) against one full-batch GD step of the default ``logreg`` task, both in
this run: the bar as shipped (redrawn at most every ``REDRAW_SECONDS``) and a bar redrawn on every
call. Prints microseconds per call and each as a fraction of a step.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable

import torch
from rich.console import Console

from optbench.loggers import console as console_module
from optbench.tasks.logreg import LogisticRegression


def microseconds_per_call(fn: Callable[[int], None], calls: int) -> float:
    start = time.perf_counter()
    for i in range(1, calls + 1):
        fn(i)
    return (time.perf_counter() - start) / calls * 1e6


def gd_step(calls: int) -> float:
    task = LogisticRegression()
    task.prepare(torch.device("cpu"), torch.float32)
    model = task.build_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = next(task.train_stream(0))[0]

    def step(_: int) -> None:
        optimizer.zero_grad()
        task.loss(model, batch).backward()
        optimizer.step()

    return microseconds_per_call(step, calls)


def bar(calls: int, redraw_every_call: bool) -> float:
    sink = console_module.ConsoleSink(calls, 0, "logreg/sgd")

    def log(step: int) -> None:
        sink.log(step, {"train/loss": 1.0 / step, "opt/lr": 0.1})
        if redraw_every_call:
            sink._progress.refresh()

    try:
        return microseconds_per_call(log, calls)
    finally:
        sink._progress.stop()


def main(calls: int = 5000) -> None:
    torch.set_num_threads(1)
    console_module.console = Console(file=io.StringIO(), force_terminal=True, width=120)
    step = gd_step(calls)
    print(f"{'per step (logreg, full-batch GD, 1 thread)':<46}{'us':>9}{'of a step':>11}")
    print(f"{'GD step (the baseline)':<46}{step:>9.1f}{1.0:>11.3f}")
    for label, every in [("console bar, as shipped", False), ("console bar redrawn on every log", True)]:
        cost = bar(calls, every)
        print(f"{label:<46}{cost:>9.1f}{cost / step:>11.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
