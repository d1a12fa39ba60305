"""Figure presets: configs/figure/NAME.yaml, read as data.

Keys: ``title``, ``paper`` (the source), ``claim`` (what the figure checks), ``kind`` (how it is
analysed and drawn: a name in :data:`optbench.figures.kinds.KINDS`), ``sweep`` (overrides every
scale shares; none for figures computed without training), ``scales`` (``smoke`` and ``paper``,
each with ``overrides``, its own extra overrides; ``variants``, optional: one sweep per entry, each
a list of overrides, for runs that are not a product, such as a tuned lr per optimizer; ``tune``,
optional: ``optbench tune``'s options, to tune every optimizer with the same budget first and draw
the winners; and ``params``) and ``params`` (the kind's settings, e.g. the verdict's tolerance; a scale's ``params``
are merged over them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from optbench.errors import OptbenchError
from optbench.runner.config import config_dir

SCALES = ("smoke", "paper")


@dataclass
class FigurePreset:
    name: str
    title: str
    paper: str
    claim: str
    kind: str
    sweep: list[str] = field(default_factory=list)
    scales: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def sweeps(self, scale: str) -> list[list[str]]:
        """The overrides of each sweep at ``scale`` (none for a figure that trains nothing)."""
        at_scale = self.scales.get(scale) or {}
        shared = [*self.sweep, *at_scale.get("overrides", [])]
        if not shared:
            return []
        return [[*shared, *variant] for variant in at_scale.get("variants") or [[]]]

    def tuning(self, scale: str) -> dict[str, Any] | None:
        """``optbench tune``'s options (TuneOptions' fields) when the figure draws tuned runs."""
        return (self.scales.get(scale) or {}).get("tune")

    def settings(self, scale: str) -> dict[str, Any]:
        return {**self.params, **((self.scales.get(scale) or {}).get("params") or {})}


def _directory():
    return config_dir() / "figure"


def names() -> list[str]:
    return sorted(path.stem for path in _directory().glob("*.yaml"))


def load(name: str) -> FigurePreset:
    path = _directory() / f"{name}.yaml"
    if not path.exists():
        raise OptbenchError(f"no figure named {name!r}; available: {', '.join(names())} "
                            "(optbench figure --list)")
    return FigurePreset(name=name, **yaml.safe_load(path.read_text()))
