"""Linear models on examples held in memory: what ``logreg`` and ``heavy_tail`` share.

The model is a bias-free ``nn.Linear`` started at zero (a bias, where wanted, is a constant
feature of the data), so every run starts from the same point and the loss at step 0 is known in
closed form. The examples are two tensors, features ``x`` and labels ``y``, that ``prepare`` puts
on the device; ``batch_size`` None trains full batch.
"""

from __future__ import annotations

import abc

import torch
from torch import nn

from optbench.contract import Batch, ParamRole, Task
from optbench.tasks.streams import FullBatchStream, ShuffledStream


class LinearTask(Task):
    """A zero-initialised ``Linear(in, out, bias=False)`` trained on ``(self.x, self.y)``."""

    x: torch.Tensor
    y: torch.Tensor
    batch_size: int | None

    @abc.abstractmethod
    def linear_shape(self) -> tuple[int, int]:
        """The model's (input features, outputs)."""

    def build_model(self) -> nn.Module:
        model = nn.Linear(*self.linear_shape(), bias=False)
        nn.init.zeros_(model.weight)
        return model

    def param_roles(self, model: nn.Module) -> dict[str, ParamRole]:
        return {"weight": ParamRole.HEAD}

    def train_stream(self, seed: int) -> FullBatchStream | ShuffledStream:
        if self.batch_size is None:
            return FullBatchStream((self.x, self.y))
        return ShuffledStream(len(self.y), self.batch_size, seed, lambda i: (self.x[i], self.y[i]))

    def work(self, batch: Batch) -> int:
        return len(batch[1])

    def probe_batches(self, seed: int, size: int | None = None) -> list[Batch]:
        """The whole data set (the full-batch Hessian), or ``size`` examples drawn by ``seed``."""
        n = len(self.y)
        if size is None or size >= n:
            return [(self.x, self.y)]
        chosen = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size]
        chosen = chosen.to(self.y.device)
        return [(self.x[chosen], self.y[chosen])]
