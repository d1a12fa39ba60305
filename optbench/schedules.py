"""Learning-rate schedules as multipliers of the optimizer's lr, for ``torch.optim.lr_scheduler.LambdaLR``.

Written as small closed forms rather than chained torch schedulers (``SequentialLR`` of
``LinearLR`` and ``CosineAnnealingLR``) so that the multiplier at every step is one readable
formula, testable on its own and identical to the GaLore/LLaMA recipe: the multiplier is
``step / warmup`` during warmup (0 at the first step, as in HF's and GaLore's schedulers), then
decays from 1 to ``floor`` over the decay steps: all the steps after warmup, or, for
warmup-stable-decay, the final ``decay_fraction`` of them (the multiplier is 1 in between).
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

    @property
    def decay_steps(self) -> int:
        """The final steps over which the multiplier decays: all those after warmup."""
        return self.total_steps - self.warmup_steps

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / self.warmup_steps
        start = self.total_steps - self.decay_steps
        progress = min(1.0, max(0.0, (step - start) / max(1, self.decay_steps)))
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


@dataclass
class WarmupStableDecay(_Warmup):
    """Warmup, a constant (stable) phase, then a cooldown over the final ``decay_fraction`` of the
    steps (WSD: Hu et al. 2024, MiniCPM). The default cooldown, 20% of the steps, and the ``sqrt``
    shape (1 − sqrt of its progress, which they found better than ``linear``) are Hägele et al.
    2024's (docs/references.md §6.5). A warm start from the stable phase with
    ``warmup_fraction=0, decay_fraction=1`` is a pure cooldown."""

    decay_fraction: float = 0.2
    shape: str = "linear"

    SHAPES = ("linear", "sqrt")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.decay_fraction <= 1.0 - self.warmup_fraction:
            raise OptbenchError(f"schedule.decay_fraction={self.decay_fraction} must be in [0, 1 - "
                                f"schedule.warmup_fraction] = [0, {1.0 - self.warmup_fraction:g}]")
        if self.shape not in self.SHAPES:
            raise OptbenchError(f"schedule.shape={self.shape} is not a cooldown shape; "
                                f"accepted: {', '.join(self.SHAPES)}")

    @property
    def decay_steps(self) -> int:
        return int(self.decay_fraction * self.total_steps)

    def decay(self, progress: float) -> float:
        return 1.0 - (math.sqrt(progress) if self.shape == "sqrt" else progress)
