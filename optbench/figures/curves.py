"""Reading what figures plot from run dirs: metric curves and the value of a config key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from optbench.loggers.jsonl import read_metrics
from optbench.sweeps.collect import RunRecord, lookup

Curve = tuple[list[float], list[float]]


def curves(record: RunRecord, metrics: Iterable[str], x: str = "step") -> dict[str, Curve]:
    """Per metric, (x, metric) at every logged step that has it, from one read of the run's
    metrics.jsonl; ``x`` is ``step`` or ``tokens``. Values are floats: the "nan"/"inf" strings
    that metrics.jsonl holds for non-finite values become float NaN/inf again."""
    rows = [r for r in read_metrics(record.path / "metrics.jsonl") if x in r]
    return {metric: ([r[x] for r in rows if metric in r], [float(r[metric]) for r in rows if metric in r])
            for metric in metrics}


def curve(record: RunRecord, metric: str, x: str = "step") -> Curve:
    """:func:`curves` for one metric."""
    return curves(record, [metric], x)[metric]


def setting(record: RunRecord, dotted: str) -> Any:
    """The run's resolved value of a config key, e.g. ``optimizer.lr``."""
    return lookup(record.config, dotted)
