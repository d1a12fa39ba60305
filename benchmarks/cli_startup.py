"""How long `optbench --help` and `optbench list` take beyond the interpreter's own start.

Prints the median wall time of each command against a bare `python -c pass`, measured in the
same run, and the difference (the goal: under a second beyond interpreter start).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def median_seconds(args: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(repeats: int = 7) -> None:
    baseline = median_seconds(["-c", "pass"], repeats)
    print(f"{'command':<28}{'median s':>10}{'beyond python':>15}{'ratio':>8}")
    print(f"{'python -c pass':<28}{baseline:>10.3f}{0.0:>15.3f}{1.0:>8.2f}")
    for label, args in [("optbench --help", ["-m", "optbench", "--help"]),
                        ("optbench list optimizers", ["-m", "optbench", "list", "optimizers"])]:
        seconds = median_seconds(args, repeats)
        print(f"{label:<28}{seconds:>10.3f}{seconds - baseline:>15.3f}{seconds / baseline:>8.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
