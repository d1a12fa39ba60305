"""Search spaces as data: ``configs/search/<optimizer>.yaml``, the hyperparameters of an optimizer
worth tuning and their ranges, each with a comment on where the range comes from.

A space is read as YAML data, never composed into a run's config: a run's id hashes its config,
so changing a range must not invalidate the runs already stored. It maps dotted run-config keys,
in order of importance (the learning rate first), to a dimension::

    optimizer.lr: {scale: log, low: 1.0e-4, high: 1.0e-1}   # a continuous range, log or linear
    optimizer.betas: {values: [[0.9, 0.95], [0.9, 0.999]]}   # or a list of values

A suite task may narrow the spaces of its optimizers (:meth:`SearchSpace.narrowed`). A value
becomes an override that Hydra parses back to the same value (:func:`override`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from optbench.errors import OptbenchError
from optbench.runner.config import config_dir
from optbench.sweeps.presets_root import presets_root

SCALES = ("log", "linear")
FIELDS = ("scale", "low", "high", "values")


def directories() -> list[Path]:
    """Where spaces are looked up: the user's presets root first (``presets/search/``, so a
    plugin optimizer can be tuned, or a shipped range replaced), then optbench's configs."""
    return [presets_root() / "search", config_dir() / "search"]


@dataclass(frozen=True)
class Dimension:
    key: str  # a dotted run-config key: optimizer.lr
    scale: str | None = None  # log | linear: a continuous range from low to high
    low: float | None = None
    high: float | None = None
    values: tuple[Any, ...] | None = None  # or one of these values

    @property
    def continuous(self) -> bool:
        return self.values is None

    @property
    def size(self) -> float:
        """How many values it holds: infinitely many for a range."""
        return math.inf if self.values is None else len(self.values)

    def at(self, u: float) -> Any:
        """The value at ``u`` in [0, 1): that fraction of the way from low to high (of the
        logarithms, for a log range), or the value whose equal share of [0, 1) holds ``u``."""
        if self.values is not None:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        if self.scale == "log":
            return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))
        return float(self.low + u * (self.high - self.low))

    def levels(self, n: int) -> list[Any]:
        """``n`` levels, both ends included: evenly spaced over the range (geometrically, for a log
        range), or ``n`` of the values spread evenly over the list."""
        if self.values is not None:
            return [self.values[int(i)] for i in np.linspace(0, len(self.values) - 1, n).round()]
        spaced = np.geomspace if self.scale == "log" else np.linspace
        return [float(v) for v in spaced(self.low, self.high, n)]

    def between(self, a: float, b: float) -> float:
        """The midpoint of two values of a range: geometric for a log range."""
        return math.sqrt(a * b) if self.scale == "log" else (a + b) / 2

    def spec(self) -> dict[str, Any]:
        """The dimension as its YAML mapping."""
        if self.values is not None:
            return {"values": list(self.values)}
        return {"scale": self.scale, "low": self.low, "high": self.high}


def dimension(key: str, spec: Any, where: str) -> Dimension:
    """A dimension from its YAML mapping; a mistake is one line naming ``where`` it was read."""
    accepted = ("accepted: {scale: log|linear, low: A, high: B} with A < B (A > 0 for log), "
                "or {values: [V1, V2, ...]}")
    if not isinstance(spec, dict) or set(spec) - set(FIELDS) or not spec:
        raise OptbenchError(f"{where}: {key}: {spec!r} is not a dimension; {accepted}")
    if "values" in spec:
        values = spec["values"]
        if set(spec) != {"values"} or not isinstance(values, list) or not values:
            raise OptbenchError(f"{where}: {key}: values must be a non-empty list, alone; got {spec!r}")
        return Dimension(key, values=tuple(values))
    scale, low, high = spec.get("scale"), spec.get("low"), spec.get("high")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high))
    if scale not in SCALES or not numbers or not low < high or (scale == "log" and low <= 0):
        raise OptbenchError(f"{where}: {key}: {spec!r} has bad bounds; {accepted}")
    return Dimension(key, scale=scale, low=float(low), high=float(high))


@dataclass(frozen=True)
class SearchSpace:
    optimizer: str
    dimensions: tuple[Dimension, ...]
    source: str  # where it was read (a file, and the suite task that narrowed it)

    @property
    def keys(self) -> list[str]:
        return [d.key for d in self.dimensions]

    @property
    def size(self) -> float:
        """How many points it holds: infinitely many with a continuous dimension."""
        return math.prod(d.size for d in self.dimensions)

    def narrowed(self, search: dict[str, Any] | None, where: str) -> SearchSpace:
        """This space with a suite task's ``search`` mapping applied (``where`` names it). A dotted
        key replaces the bounds or values of that key for every optimizer whose space has it; a
        key naming this optimizer holds a mapping for it alone, which may also add keys. A null
        drops the key."""
        search = search or {}
        for key in search:
            if "." not in key and not isinstance(search[key], dict):
                raise OptbenchError(f"{where}: search: {key}: expected a dotted run-config key "
                                    "(optimizer.lr) or an optimizer's name holding a mapping of them")
        shared = {k: v for k, v in search.items() if "." in k and k in self.keys}
        changes = {**shared, **(search.get(self.optimizer) or {})}
        if not changes:
            return self
        specs = {d.key: d.spec() for d in self.dimensions}
        for key, change in changes.items():
            if change is None:
                specs.pop(key, None)
            elif isinstance(change, dict) and key in specs and set(change) <= {"scale", "low", "high"} \
                    and "values" not in specs[key]:
                specs[key] = {**specs[key], **change}  # new bounds for a range
            else:
                specs[key] = change
        source = f"{self.source}, narrowed by {where}"
        return SearchSpace(self.optimizer, tuple(dimension(k, s, source) for k, s in specs.items()), source)


def names() -> list[str]:
    return sorted({path.stem for directory in directories() for path in directory.glob("*.yaml")})


def load(optimizer: str) -> SearchSpace:
    """The search space of ``optimizer`` (its config's name)."""
    found = [d / f"{optimizer}.yaml" for d in directories() if (d / f"{optimizer}.yaml").exists()]
    if not found:
        raise OptbenchError(f"no search space for optimizer {optimizer!r}: no {optimizer}.yaml in "
                            f"{' or '.join(str(d) for d in directories())}; spaces exist for: "
                            f"{', '.join(names())} (or tune it with --budget 1, its defaults)")
    path = found[0]
    where = str(path)
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not data:
        raise OptbenchError(f"{where}: an empty search space; map at least one run-config key "
                            "(optimizer.lr) to a dimension, or tune with --budget 1 (the defaults)")
    return SearchSpace(optimizer, tuple(dimension(k, s, where) for k, s in data.items()), where)


# -- values as overrides -----------------------------------------------------------------------------


def value_text(value: Any) -> str:
    """``value`` as Hydra's override grammar writes it, parsed back to the same value: floats
    by ``repr`` (the shortest text that round-trips), lists element by element, strings quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(value_text(v) for v in value) + "]"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"cannot write {value!r} as an override value")


def override(key: str, value: Any) -> str:
    return f"{key}={value_text(value)}"
