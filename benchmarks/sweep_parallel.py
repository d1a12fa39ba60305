"""Wall time of a 6-job sweep: Hydra's basic launcher (one job after another) against
optbench's parallel launcher with 2 CPU workers (``hydra/launcher=parallel hydra.launcher.jobs=2``).

Both sweeps run the same `optbench run -m` command from the command line, each into an empty
store of its own, so nothing is reused. Prints both wall times and their ratio.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

SWEEP = ["task=logreg", "task.batch_size=8", "optimizer=sgd,adam,signum", "seed=0,1", "train.steps=20000",
         "logger=none"]


def wall_seconds(launcher: list[str]) -> float:
    with tempfile.TemporaryDirectory() as cwd:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "optbench", "run", "-m", *SWEEP, *launcher], cwd=cwd,
                       check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    serial = wall_seconds(["hydra/launcher=basic"])
    parallel = wall_seconds(["hydra/launcher=parallel", "hydra.launcher.jobs=2"])
    print(f"6 jobs ({' '.join(SWEEP)})")
    print(f"{'serial (basic launcher)':<40}{serial:>8.1f} s")
    print(f"{'parallel launcher, 2 CPU workers':<40}{parallel:>8.1f} s")
    print(f"{'speed-up':<40}{serial / parallel:>8.2f}×")


if __name__ == "__main__":
    main()
