"""How long a 1-step run takes against importing torch: what every small job of a sweep, a tune
or the test suite pays before its first step.

Times ``optbench run task=logreg train.steps=1 logger=none`` (into a fresh temp dir each time)
against ``python -c "import torch"``, alternately in this one run so that a shared machine's
load hits both alike, and prints the medians and their ratio (the goal: at most 1.5x). A third
line is the floor of any run: ``import torch`` and one torch.optim.SGD built (torch.optim
imports torch._dynamo as it builds its first optimizer), with the garbage collector paused
meanwhile as ``optbench run`` pauses it (optbench/cli.py).

    python benchmarks/run_startup.py        # 5 rounds, about a minute
    python benchmarks/run_startup.py 9      # 9 rounds
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "python -c 'import torch'": ["-c", "import torch"],
    "import torch + build SGD": ["-c", ("import gc; gc.disable(); import torch; "
                                  "torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))]); gc.freeze()")],
    "optbench run (1 step)": ["-m", "optbench", "run", "task=logreg", "train.steps=1", "logger=none"],
}


def seconds(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main(rounds: int = 5) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    times: dict[str, list[float]] = {label: [] for label in COMMANDS}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            for label, args in COMMANDS.items():
                if args[0] == "-m":
                    args = [*args, f"hydra.run.dir={tmp}/run{i}"]
                times[label].append(seconds(args, env))
    medians = {label: statistics.median(ts) for label, ts in times.items()}
    baseline = medians["python -c 'import torch'"]
    print(f"{'command':<28}{'median s':>10}{'ratio':>8}")
    for label, median in medians.items():
        print(f"{label:<28}{median:>10.3f}{median / baseline:>8.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
