"""Reading what figures plot from run dirs: metric curves and the value of a config key."""

from __future__ import annotations

from typing import Any

from optbench.runner.sinks.jsonl import read_metrics
from optbench.sweeps.collect import RunRecord, lookup


def curve(record: RunRecord, metric: str, x: str = "step") -> tuple[list[float], list[float]]:
    """(x, metric) at every logged step that has the metric; ``x`` is ``step`` or ``tokens``."""
    rows = [r for r in read_metrics(record.path / "metrics.jsonl") if metric in r and x in r]
    return [r[x] for r in rows], [r[metric] for r in rows]


def setting(record: RunRecord, dotted: str) -> Any:
    """The run's resolved value of a config key, e.g. ``optimizer.lr``."""
    return lookup(record.config, dotted)
