"""Whether a figure's claim held, with the numbers behind it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optbench.runner.run_dir import write_json

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


@dataclass
class Verdict:
    held: bool
    lines: list[str]  # one finding per line, each with its numbers
    numbers: dict[str, Any] = field(default_factory=dict)  # the same, machine-readable

    def write(self, path: Path) -> None:
        write_json(path, asdict(self))


@dataclass
class Drawn:
    """What a figure kind returns: the figure, the numbers it plots (tidy), and the verdict."""

    figure: Figure
    data: pd.DataFrame
    verdict: Verdict
