"""What a figure kind's analysis finds: the numbers it plots and whether the claim held (the
verdict), with the numbers behind it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optbench.runner.run_dir import write_json

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Verdict:
    held: bool
    lines: list[str]  # one finding per line, each with its numbers
    numbers: dict[str, Any] = field(default_factory=dict)  # the same, machine-readable

    def __post_init__(self) -> None:
        self.numbers = _json_safe(self.numbers)  # what verdict.json holds, in memory too

    def write(self, path: Path) -> None:
        write_json(path, asdict(self))


def _json_safe(value: Any) -> Any:
    """NaN and inf (a diverged run's numbers) as None: verdict.json stays strict JSON."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_json_safe(v) for v in value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Analysis:
    """What a figure kind's ``analyze`` finds, for ``make`` to save and the kind's ``draw`` to
    plot: the plotted numbers, tidy (saved as NAME.csv), and the verdict. Each kind subclasses
    it with whatever else its drawing needs, computed here too, so that drawing only draws and
    the numbers never need matplotlib."""

    data: pd.DataFrame
    verdict: Verdict
