"""The figure kinds, by the name a preset gives as its ``kind``.

Each kind is two steps: ``analyze`` reads the sweep's runs and computes every number (the CSV's
frame, the verdict, what the figure plots) without matplotlib; ``draw`` turns that analysis into
the figure and computes nothing. Importing this imports every kind's module, and none of them
imports matplotlib, pandas or scipy at import time (only inside the functions that use them), so
looking a kind up stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optbench.errors import OptbenchError
from optbench.figures import adam_eos, eos, heavy_tail, matrix_sensing, memory, swan_vs_adam
from optbench.figures.preset import FigurePreset
from optbench.figures.verdict import Analysis
from optbench.sweeps.collect import RunRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class FigureKind:
    analyze: Callable[[FigurePreset, list[RunRecord], dict[str, Any]], Analysis]
    draw: Callable[[Any], Figure]  # takes what this kind's analyze returns


KINDS: dict[str, FigureKind] = {
    "eos": FigureKind(eos.analyze, eos.draw),
    "adam_eos": FigureKind(adam_eos.analyze, eos.draw),  # Adam's edge, drawn as GD's
    "matrix_sensing": FigureKind(matrix_sensing.analyze, matrix_sensing.draw),
    "swan_vs_adam": FigureKind(swan_vs_adam.analyze, swan_vs_adam.draw),
    "memory": FigureKind(memory.analyze, memory.draw),
    "heavy_tail": FigureKind(heavy_tail.analyze, heavy_tail.draw),
}


def kind_of(preset: FigurePreset) -> FigureKind:
    if preset.kind not in KINDS:
        raise OptbenchError(f"figure {preset.name!r}: kind {preset.kind!r} is not a figure kind; "
                            f"accepted: {', '.join(sorted(KINDS))}")
    return KINDS[preset.kind]
