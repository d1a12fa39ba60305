"""Resumable batch streams over data held in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch


class FullBatchStream:
    """Every step uses the same batch: full-batch gradient descent."""

    def __init__(self, batch: Any) -> None:
        self.batch = batch

    def __iter__(self) -> Iterator[list[Any]]:
        return self

    def __next__(self) -> list[Any]:
        return [self.batch]

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


class ShuffledStream:
    """Minibatches of ``size`` indices from a fresh permutation each epoch (the last partial batch
    of an epoch is dropped). The permutation of epoch ``e`` depends on ``(seed, e)`` alone, so the
    position ``(epoch, index)`` is all a checkpoint needs."""

    def __init__(self, n: int, size: int, seed: int, take: Callable[[torch.Tensor], Any]) -> None:
        self.n, self.size, self.seed, self.take = n, size, seed, take
        self.epoch, self.index = 0, 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        state = np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0]
        generator = torch.Generator().manual_seed(int(state))
        return torch.randperm(self.n, generator=generator)

    def __iter__(self) -> Iterator[list[Any]]:
        return self

    def __next__(self) -> list[Any]:
        if self.index + self.size > self.n:
            self.epoch, self.index = self.epoch + 1, 0
            self._perm = self._permutation(self.epoch)
        indices = self._perm[self.index : self.index + self.size]
        self.index += self.size
        return [self.take(indices)]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epoch, self.index = state["epoch"], state["index"]
        self._perm = self._permutation(self.epoch)
