"""The value a sweeper (Optuna) optimizes: a final metric of the run, or a penalty when the run
did not complete. A study must go on past a diverged or crashed trial: Optuna's Hydra sweeper
stops the whole study on a NaN or an exception (DESIGN.md §6).
"""

from __future__ import annotations

import math
from typing import Any

from optbench.errors import OptbenchError


def objective_value(objective: Any, summary: dict[str, Any]) -> float:
    """``objective.metric`` from the run's final metrics; ``objective.penalty`` unless completed."""
    final = summary.get("final") or {}
    if summary.get("status") != "completed":
        return float(objective.penalty)
    if objective.metric not in final:
        raise OptbenchError(
            f"objective.metric={objective.metric} is not a final metric of this run; "
            f"it has: {', '.join(sorted(final))}"
        )
    value = float(final[objective.metric])
    return value if math.isfinite(value) else float(objective.penalty)
