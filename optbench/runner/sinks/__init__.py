"""Where metrics go: the console, metrics.jsonl, and external loggers such as W&B.

A sink has ``log(step, metrics)`` and ``close(summary)``; the runner calls ``close`` on every sink
whatever way the run ends, so W&B runs are always finished.
"""

from __future__ import annotations

from typing import Any, Protocol


class Sink(Protocol):
    def log(self, step: int, metrics: dict[str, float]) -> None: ...

    def close(self, summary: dict[str, Any]) -> None: ...
