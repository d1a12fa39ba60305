"""Networks for 3×32×32 images. Each has a ``stem`` (the input layer) and a ``head`` (the
classifier), which :func:`param_roles` reads.

- ``fc`` and ``cnn``: the edge-of-stability networks of Cohen et al. 2021
  (locuslab/edge-of-stability, ``src/archs.py``): ``fc-*`` is Flatten, ``depth`` × (Linear(width),
  activation), Linear(classes), with width 200 and depth 2 there; ``cnn-*`` is ``depth`` × (3×3
  conv, padding 1, activation, 2×2 max-pool), Flatten, Linear(classes), with width 32 and depth
  2 there. Both with biases and PyTorch's default init.
- ``resnet18``: ResNet-18 (He et al. 2016) in its usual CIFAR form: a 3×3 stride-1 stem with no
  max-pool, four stages of two basic blocks (widths w, 2w, 4w, 8w; w = 64), global average pool.
- ``airbench``: after airbench94 (Jordan 2024, "94% on CIFAR-10 in 3.29 Seconds on a Single
  GPU"; KellerJordan/cifar10-airbench): a 2×2 stem conv whose filters can be set to whiten the
  data's patches and then stay frozen, then three blocks of (3×3 conv, 2×2 max-pool, BatchNorm,
  GELU, 3×3 conv, BatchNorm, GELU) of widths w, 4w, 4w (w = 64), a 3×3 max-pool and a bias-free
  linear head whose output is divided by its fan-in. As there: convs start as identity on their
  first input channels (Dirac), BatchNorm gains stay 1 (only the biases train), running
  statistics move with momentum 0.4, the head starts with unit-std weights, and activations are
  channels_last.
"""

from __future__ import annotations

import itertools
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from optbench.contract import ParamRole

Model = Literal["fc", "cnn", "resnet18", "airbench"]
Activation = Literal["tanh", "elu", "relu"]
_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "elu": nn.ELU, "relu": nn.ReLU}
PIXELS = 3 * 32 * 32

#: (width, depth, activation) when the config leaves them unset; None: the model has no such knob
DEFAULTS: dict[str, tuple[int, int | None, str | None]] = {
    "fc": (200, 2, "tanh"),
    "cnn": (32, 2, "tanh"),
    "resnet18": (64, None, None),
    "airbench": (64, None, None),
}
MAX_CNN_DEPTH = 5  # each layer halves the 32×32 image


class FullyConnected(nn.Module):
    def __init__(self, classes: int, width: int, depth: int, activation: Activation) -> None:
        super().__init__()
        act = _ACTIVATIONS[activation]
        self.stem = nn.Linear(PIXELS, width)
        self.hidden = nn.Sequential(
            act(), *(m for _ in range(depth - 1) for m in (nn.Linear(width, width), act()))
        )
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(self.stem(x.flatten(1))))


class ConvNet(nn.Module):
    def __init__(self, classes: int, width: int, depth: int, activation: Activation) -> None:
        super().__init__()
        act = _ACTIVATIONS[activation]

        def conv(channels_in: int) -> nn.Conv2d:
            return nn.Conv2d(channels_in, width, kernel_size=3, padding=1)

        self.stem = conv(3)
        self.hidden = nn.Sequential(
            act(), nn.MaxPool2d(2),
            *(m for _ in range(depth - 1) for m in (conv(width), act(), nn.MaxPool2d(2))),
        )
        side = 32 >> depth
        self.head = nn.Linear(width * side * side, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(self.stem(x)).flatten(1))


class BasicBlock(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(channels_in, channels_out, 1, stride, bias=False),
                nn.BatchNorm2d(channels_out),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, classes: int, width: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, 1, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(width)
        blocks, channels = [], width
        for stage in range(4):
            out = width << stage
            stride = 1 if stage == 0 else 2
            blocks += [BasicBlock(channels, out, stride), BasicBlock(out, out, 1)]
            channels = out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.relu(self.stem_bn(self.stem(x))))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


class _AirbenchNorm(nn.BatchNorm2d):
    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=1e-12, momentum=0.4)
        self.weight.requires_grad_(False)


class _AirbenchConv(nn.Conv2d):
    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__(channels_in, channels_out, 3, padding="same", bias=False)
        with torch.no_grad():
            nn.init.dirac_(self.weight[: min(channels_in, channels_out)])


class _AirbenchBlock(nn.Sequential):
    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__(
            _AirbenchConv(channels_in, channels_out), nn.MaxPool2d(2),
            _AirbenchNorm(channels_out), nn.GELU(),
            _AirbenchConv(channels_out, channels_out), _AirbenchNorm(channels_out), nn.GELU(),
        )


class Airbench(nn.Module):
    PATCH = 2  # the stem's kernel: 3·2·2 = 12 patch dimensions, each whitened with both signs

    def __init__(self, classes: int, width: int, whiten: bool) -> None:
        super().__init__()
        stem_width = 2 * 3 * self.PATCH**2
        self.stem = nn.Conv2d(3, stem_width, self.PATCH, bias=True)
        self.stem.weight.requires_grad_(not whiten)
        widths = (stem_width, width, 4 * width, 4 * width)
        self.blocks = nn.Sequential(
            nn.GELU(), *(_AirbenchBlock(a, b) for a, b in itertools.pairwise(widths)), nn.MaxPool2d(3)
        )
        self.head = nn.Linear(widths[-1], classes, bias=False)
        with torch.no_grad():
            self.head.weight /= self.head.weight.std()
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x.contiguous(memory_format=torch.channels_last))).flatten(1)
        return self.head(x) / x.size(1)

    @torch.no_grad()
    def whiten_from(self, images: torch.Tensor, eps: float = 5e-4, chunk: int = 500) -> None:
        """Set the stem's filters to ±(eigenvectors / sqrt(eigenvalues + eps)) of the covariance
        of all 2×2 patches of ``images`` (normalised), so that its output is whitened."""
        dim = 3 * self.PATCH**2
        covariance = torch.zeros(dim, dim, dtype=torch.float64, device=images.device)
        count = 0
        for part in images.split(chunk):
            part = part.float()
            rows, cols = part.shape[2] - self.PATCH + 1, part.shape[3] - self.PATCH + 1
            shifted = [part[:, :, i : i + rows, j : j + cols]
                       for i in range(self.PATCH) for j in range(self.PATCH)]
            # (N, 3, PATCH², rows, cols) -> one row per patch, ordered like the stem's filters
            patches = torch.stack(shifted, 2).permute(0, 3, 4, 1, 2).reshape(-1, dim)
            covariance += (patches.T @ patches).double()
            count += len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance / count)
        filters = eigenvectors.T / (eigenvalues[:, None] + eps).sqrt()
        filters = filters.reshape(dim, 3, self.PATCH, self.PATCH)
        weight = self.stem.weight
        weight.copy_(torch.cat([filters, -filters]).to(weight.device, weight.dtype))


def build(
    model: Model, classes: int, width: int, depth: int | None, activation: str | None, whiten: bool
) -> nn.Module:
    if model == "fc":
        return FullyConnected(classes, width, depth, activation)
    if model == "cnn":
        return ConvNet(classes, width, depth, activation)
    if model == "resnet18":
        return ResNet18(classes, width)
    return Airbench(classes, width, whiten)


def param_roles(model: nn.Module) -> dict[str, ParamRole]:
    """The stem's weight is the ``embedding``, the head's weight the ``head``; other weights of
    two or more dimensions (hidden linear weights and conv kernels, 4-D) are ``matrix``; biases
    and BatchNorm parameters are ``vector``."""
    special = {id(model.stem.weight): ParamRole.EMBEDDING, id(model.head.weight): ParamRole.HEAD}
    return {
        name: special.get(id(p), ParamRole.MATRIX if p.ndim >= 2 else ParamRole.VECTOR)
        for name, p in model.named_parameters()
    }
