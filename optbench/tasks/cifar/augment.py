"""Batched, on-device CIFAR augmentation and normalisation.

The standard CIFAR recipe (He et al. 2016, "Deep Residual Learning", §4.2): a random 32×32 crop
of the image padded by 4 pixels, and a random horizontal flip. Here both are one gather over the
whole uint8 batch: each output pixel reads the source pixel at its shifted (and possibly
mirrored) position, so there is no per-sample Python and no padded copy. Padding is ``reflect``
(as airbench, KellerJordan/cifar10-airbench, pads) or ``zeros`` (black pixels, as torchvision's
``RandomCrop(32, padding=4)`` before normalisation). All randomness comes from the
``torch.Generator`` passed in, so a batch's augmentation is fixed by that generator's seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

PadMode = Literal["reflect", "zeros"]

# Per-channel mean and std of the training images, in [0, 1] units (the usual constants).
MEAN_STD = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


@dataclass(frozen=True)
class Augment:
    """Random crop of the ``pad``-padded image and, with ``flip``, a random horizontal flip."""

    pad: int = 4
    pad_mode: PadMode = "zeros"
    flip: bool = True

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``images``: uint8 B×C×H×W on ``generator``'s device; returns a new uint8 batch."""
        batch, channels, height, width = images.shape
        device = images.device
        shifts = torch.randint(0, 2 * self.pad + 1, (2, batch), generator=generator, device=device)
        rows, row_ok = self._source(shifts[0], height)
        cols, col_ok = self._source(shifts[1], width)
        if self.flip:
            flipped = torch.rand(batch, generator=generator, device=device) < 0.5
            cols = torch.where(flipped[:, None], cols.flip(1), cols)
            col_ok = torch.where(flipped[:, None], col_ok.flip(1), col_ok)
        index = (rows[:, :, None] * width + cols[:, None, :]).view(batch, 1, height * width)
        out = images.reshape(batch, channels, height * width).gather(
            2, index.expand(batch, channels, height * width)
        )
        if self.pad_mode == "zeros":
            inside = (row_ok[:, :, None] & col_ok[:, None, :]).view(batch, 1, height * width)
            out = out * inside
        return out.view(batch, channels, height, width)

    def _source(self, shift: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """For each output position, the source index along one axis (B×size) and whether it
        lies inside the image (else it is padding)."""
        index = torch.arange(size, device=shift.device) + (shift[:, None] - self.pad)
        inside = (index >= 0) & (index < size)
        if self.pad_mode == "reflect":  # -1 -> 1, size -> size - 2 (no edge repeat)
            index = index.abs()
            index = torch.where(index >= size, 2 * (size - 1) - index, index)
        return index.clamp(0, size - 1), inside


class Normalize:
    """uint8 images to ``(x / 255 - mean) / std`` per channel, in ``dtype``."""

    def __init__(
        self,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        std_t = torch.tensor(std, dtype=torch.float64)
        mean_t = torch.tensor(mean, dtype=torch.float64)
        self.scale = (1 / (255 * std_t)).to(device, dtype).view(1, -1, 1, 1)
        self.shift = (-mean_t / std_t).to(device, dtype).view(1, -1, 1, 1)
        self.dtype = dtype

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, images.to(self.dtype), self.scale)
