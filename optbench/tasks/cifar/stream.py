"""The resumable stream of CIFAR step batches, made on the device from the uint8 training split.

The example order is :class:`~optbench.tasks.streams.ShuffledStream`'s (a fresh permutation per
epoch from ``(seed, epoch)``), or the whole split every step for full-batch training. A step's
augmentation draws from a generator seeded by ``(seed, step)`` alone, so the stream's position
(the step count and the shuffle's epoch and index) is all a checkpoint needs for a resumed run
to see bit-identical batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch

from optbench.tasks.cifar.augment import Augment, Normalize
from optbench.tasks.cifar.data import Split
from optbench.tasks.streams import ShuffledStream

_AUGMENT_STREAM = 1  # SeedSequence spawn key: augmentation draws independently of the shuffle


class CifarBatch(NamedTuple):
    images: torch.Tensor  # normalised, B×3×32×32
    labels: torch.Tensor  # int64, B


def micro_batches(split: Split, normalize: Normalize, size: int) -> Iterator[CifarBatch]:
    """``split`` normalised, in micro-batches of ``size`` examples (the last may be smaller),
    each normalised only when reached."""
    for images, labels in zip(split.images.split(size), split.labels.split(size)):
        yield CifarBatch(normalize(images), labels)


class CifarStream:
    """Step batches of ``batch_size`` examples (None: the whole split), augmented by ``augment``
    (None: not at all), normalised, in micro-batches of ``micro_batch`` examples."""

    def __init__(
        self,
        split: Split,
        normalize: Normalize,
        augment: Augment | None,
        seed: int,
        batch_size: int | None,
        micro_batch: int,
    ) -> None:
        self.split, self.normalize = split, normalize
        self.seed, self.micro_batch = seed, micro_batch
        self.step = 0
        self._order = (
            None if batch_size is None
            else ShuffledStream(len(split), batch_size, seed, lambda indices: indices)
        )
        self._everything = torch.arange(len(split), device=split.labels.device)
        self._padded = None if augment is None else augment.prepare(split.images)
        # full batch without augmentation: the same step batch every step, normalised once
        self._fixed = (
            list(micro_batches(split, normalize, micro_batch))
            if batch_size is None and augment is None else None
        )

    def _generator(self, step: int) -> torch.Generator:
        sequence = np.random.SeedSequence([self.seed, step], spawn_key=(_AUGMENT_STREAM,))
        device = self.split.images.device
        return torch.Generator(device=device).manual_seed(int(sequence.generate_state(1)[0]))

    def __iter__(self) -> Iterator[list[CifarBatch]]:
        return self

    def __next__(self) -> list[CifarBatch]:
        step, self.step = self.step, self.step + 1
        if self._fixed is not None:
            return self._fixed
        indices = self._everything
        if self._order is not None:
            [indices] = next(self._order)
            indices = indices.to(self.split.labels.device)
        if self._padded is None:
            batch = self.split.take(indices)
        else:
            images = self._padded.crops(indices, self._generator(step))
            batch = Split(images, self.split.labels.index_select(0, indices))
        return list(micro_batches(batch, self.normalize, self.micro_batch))

    def state_dict(self) -> dict[str, Any]:
        order = {} if self._order is None else {"order": self._order.state_dict()}
        return {"step": self.step, **order}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.step = state["step"]
        if self._order is not None:
            self._order.load_state_dict(state["order"])
