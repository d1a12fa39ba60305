"""Batched, on-device CIFAR augmentation and normalisation.

The standard CIFAR recipe (He et al. 2016, "Deep Residual Learning", §4.2): a random 32×32 crop
of the image padded by 4 pixels, and a random horizontal flip. Padding is ``reflect`` (as airbench,
KellerJordan/cifar10-airbench, pads) or ``zeros`` (black pixels, as torchvision's
``RandomCrop(32, padding=4)`` before normalisation). All randomness comes from the
``torch.Generator`` passed in, so a batch's augmentation is fixed by that generator's seed.

:meth:`Augment.prepare` pads the data set once and, with flips, stores its mirror image too (the
crop at column shift ``dx`` of the mirrored padded image is the mirror of the crop at
``2·pad − dx``); airbench likewise pads its GPU-resident data once. A batch is then one
``index_select`` of pixel rows: each 32-pixel row of a crop is a window of the flat padded data,
so taking the batch's examples, cropping and flipping them is one copy of the batch's bytes,
with no per-sample Python and no per-pixel index. The draws (row and column shifts, then flips)
and the pixels are those of padding, cropping and flipping each image in turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from optbench.tasks.cifar.data import IMAGE_SHAPE

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

    def prepare(self, images: torch.Tensor) -> Padded:
        """The uint8 N×C×H×W data set ready to be augmented batch after batch (on its device)."""
        return Padded(self, images)


class Padded:
    """A uint8 data set padded (and, with flips, also mirrored) once. For CIFAR's pad 4 that is
    1.56× the data set's bytes, 3.1× with flips (CIFAR-10's 50,000 images: 480 MB)."""

    def __init__(self, augment: Augment, images: torch.Tensor) -> None:
        self.augment = augment
        self.count, channels, self.height, self.width = images.shape
        pad = augment.pad
        padded_height, padded_width = self.height + 2 * pad, self.width + 2 * pad
        copies = 2 if augment.flip else 1
        data = images.new_zeros((copies * self.count, channels, padded_height, padded_width))
        plain = data[: self.count]
        plain[:, :, pad : pad + self.height, pad : pad + self.width] = images
        if pad and augment.pad_mode == "reflect":  # row -k is row k, row H-1+k is row H-1-k
            plain[:, :, :pad] = plain[:, :, pad + 1 : 2 * pad + 1].flip(2)
            plain[:, :, -pad:] = plain[:, :, -2 * pad - 1 : -pad - 1].flip(2)
            plain[..., :pad] = plain[..., pad + 1 : 2 * pad + 1].flip(3)
            plain[..., -pad:] = plain[..., -2 * pad - 1 : -pad - 1].flip(3)
        if augment.flip:
            data[self.count :] = plain.flip(3)
        self.image_size = channels * padded_height * padded_width
        # windows[i] is the `width` pixels from flat position i: any row of any crop
        self.windows = data.view(-1).unfold(0, self.width, 1)
        # the first pixel of each of a crop's C×H rows, relative to the crop's first pixel
        channel = torch.arange(channels, device=data.device) * padded_height * padded_width
        row = torch.arange(self.height, device=data.device) * padded_width
        self.row_starts = (channel[:, None] + row[None, :]).view(-1)
        self.padded_width = padded_width

    def crops(self, indices: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Examples ``indices`` (int64, on the data's device), each randomly cropped and maybe
        flipped by draws from ``generator``: a new uint8 B×C×H×W batch."""
        batch, pad, device = len(indices), self.augment.pad, indices.device
        shifts = torch.randint(0, 2 * pad + 1, (2, batch), generator=generator, device=device)
        dy, dx = shifts
        image = indices
        if self.augment.flip:
            flipped = torch.rand(batch, generator=generator, device=device) < 0.5
            image = indices + flipped * self.count
            dx = torch.where(flipped, 2 * pad - dx, dx)
        first = image * self.image_size + dy * self.padded_width + dx
        rows = (first[:, None] + self.row_starts).view(-1)
        out = self.windows.index_select(0, rows)
        return out.view(batch, -1, self.height, self.width)


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
        # whole C×H×W constants: broadcast over the batch only, CPU's addcmul vectorises (with
        # 1×C×1×1 constants it runs scalar, several times slower); the values are the same
        shape = (1, *IMAGE_SHAPE)
        self.scale = (1 / (255 * std_t)).to(device, dtype).view(1, -1, 1, 1).expand(shape)
        self.shift = (-mean_t / std_t).to(device, dtype).view(1, -1, 1, 1).expand(shape)
        self.scale, self.shift = self.scale.contiguous(), self.shift.contiguous()
        self.dtype = dtype

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        out = images.to(self.dtype, copy=True)
        return torch.addcmul(self.shift, out, self.scale, out=out)
