"""metrics.jsonl: one JSON object per logged step, flushed as written."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from optbench.contract import STEP, Summary


def _finite_or_str(value: float) -> float | str:
    # JSON has no NaN/inf; write them as strings so every line stays valid JSON
    return value if not isinstance(value, float) or math.isfinite(value) else str(value)


class JsonlSink:
    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        """Append to ``path``; on resume, first drop the lines logged after ``resume_step``
        (they came after the checkpoint and will be logged again, identically)."""
        if resume_step is not None and path.exists():
            kept = [line for line in path.read_text().splitlines(keepends=True)
                    if line.strip() and _step(line) is not None and _step(line) <= resume_step]
            path.write_text("".join(kept))
        elif path.exists():
            path.unlink()
        self._file = path.open("a", buffering=1)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        record = {STEP: step, **{k: _finite_or_str(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(record) + "\n")

    def close(self, summary: Summary) -> None:
        self._file.close()


def _step(line: str) -> int | None:
    try:
        return json.loads(line)[STEP]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None  # a line cut short by a kill


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a metrics.jsonl (a line cut short by a kill is skipped)."""
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
