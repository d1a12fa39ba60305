"""Learning-rate schedules as multipliers of the optimizer's lr, for ``torch.optim.lr_scheduler.LambdaLR``.

Written as small closed forms rather than chained torch schedulers (``SequentialLR`` of
``LinearLR`` and ``CosineAnnealingLR``) so that the multiplier at every step is one readable
formula, testable on its own and identical to the GaLore/LLaMA recipe: the multiplier is
``step / warmup`` during warmup (0 at the first step, as in HF's and GaLore's schedulers), then
decays from 1 to ``floor``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from optbench.errors import OptbenchError


@dataclass
class _Warmup:
    total_steps: int
    warmup_fraction: float = 0.0
    floor: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise OptbenchError(
                f"schedule.warmup_fraction={self.warmup_fraction} must be in [0, 1)"
            )
        if not 0.0 <= self.floor <= 1.0:
            raise OptbenchError(f"schedule.floor={self.floor} must be in [0, 1]")
        self.warmup_steps = int(self.warmup_fraction * self.total_steps)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.floor + (1.0 - self.floor) * self.decay(progress)

    def decay(self, progress: float) -> float:
        """The decay from 1 (progress 0) to 0 (progress 1)."""
        raise NotImplementedError


class WarmupConstant(_Warmup):
    def decay(self, progress: float) -> float:
        return 1.0


class WarmupCosine(_Warmup):
    def decay(self, progress: float) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupLinear(_Warmup):
    def decay(self, progress: float) -> float:
        return 1.0 - progress
