"""The value a sweeper (Optuna) optimizes: a final metric of the run, or a penalty when the run
did not complete. A study must go on past a diverged or crashed trial: Optuna's Hydra sweeper
stops the whole study on a NaN or an exception (docs/architecture.md §4).
"""

from __future__ import annotations

import math
from typing import Any

from optbench.contract import RunStatus, Summary
from optbench.errors import OptbenchError


def objective_value(objective: Any, summary: Summary | None) -> float:
    """``objective.metric`` from the run's final metrics; ``objective.penalty`` unless completed."""
    if summary is None or summary.status != RunStatus.COMPLETED:
        return float(objective.penalty)
    final = summary.final
    if objective.metric not in final:
        raise OptbenchError(
            f"objective.metric={objective.metric} is not a final metric of this run; "
            f"it has: {', '.join(sorted(final))}"
        )
    value = float(final[objective.metric])
    return value if math.isfinite(value) else float(objective.penalty)
