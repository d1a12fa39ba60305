"""An exponential moving average of the weights (``train.ema: β``), evaluated beside the weights
themselves as ``eval_ema/*``: averaging gives much of a learning-rate cooldown's gain without one
(Hägele et al. 2024, on weight averaging; Morales-Brotons et al. 2024, "Exponential Moving Average
of Weights in Deep Learning: Dynamics and Benefits"; docs/references.md §6.5), so a fair
comparison reports both.

``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn(β)``: the first update copies
the weights, each later one is ``ema ← β·ema + (1 − β)·w`` (buffers too, ``use_buffers=True``).
The loop updates it after every optimizer step; its state (weights and update count) goes into
the checkpoints, so a resumed run continues it exactly.
"""

from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from optbench.contract import EVAL_EMA_PREFIX

_EVAL_PREFIX = "eval/"


def build_average(model: nn.Module, beta: float | None) -> AveragedModel | None:
    """The EMA of ``model``'s weights with decay ``beta`` (None: no averaging), starting from them.
    It is only ever evaluated, so it stays in eval mode."""
    if beta is None:
        return None
    average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(beta), use_buffers=True)
    return average.eval()


def as_ema(metrics: dict[str, float]) -> dict[str, float]:
    """A task's evaluation of the averaged weights, renamed ``eval/x`` -> ``eval_ema/x``."""
    return {EVAL_EMA_PREFIX + key.removeprefix(_EVAL_PREFIX): value for key, value in metrics.items()}
