"""Parameter-space vectors: one flat 1-D tensor per vector, and seeded random draws."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor


@dataclass(frozen=True)
class FlatLayout:
    """Where named tensors (parameters, gradients, HVPs) sit in one flat vector: ``names`` order."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]

    @classmethod
    def of(cls, tensors: Mapping[str, Tensor]) -> FlatLayout:
        return cls(tuple(tensors), tuple(t.shape for t in tensors.values()))

    @property
    def numels(self) -> tuple[int, ...]:
        return tuple(math.prod(shape) for shape in self.shapes)

    @property
    def dim(self) -> int:
        return sum(self.numels)

    def flatten(self, tensors: Mapping[str, Tensor] | Sequence[Tensor]) -> Tensor:
        """One flat vector from tensors given by name or in ``names`` order."""
        parts = [tensors[name] for name in self.names] if isinstance(tensors, Mapping) else tensors
        return torch.cat([t.reshape(-1) for t in parts])

    def unflatten(self, vector: Tensor) -> dict[str, Tensor]:
        """Views into ``vector``, shaped like the named tensors."""
        if vector.shape != (self.dim,):
            raise ValueError(
                f"expected a flat vector of shape ({self.dim},), got {tuple(vector.shape)}"
            )
        chunks = vector.split(self.numels)
        return {name: c.view(s) for name, c, s in zip(self.names, chunks, self.shapes, strict=True)}


def random_vector(
    dim: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    distribution: Literal["gaussian", "rademacher"] = "gaussian",
) -> Tensor:
    """A random vector, drawn on the generator's device (CPU without one) and then moved.

    Drawing where the generator lives makes a seeded CPU generator give the same vector on every
    device.
    """
    draw_device = generator.device if generator is not None else torch.device("cpu")
    if distribution == "gaussian":
        v = torch.randn(dim, generator=generator, dtype=dtype, device=draw_device)
    elif distribution == "rademacher":
        bits = torch.randint(0, 2, (dim,), generator=generator, device=draw_device)
        v = bits.to(dtype).mul_(2).sub_(1)
    else:
        raise ValueError(f"unknown distribution {distribution!r}: use 'gaussian' or 'rademacher'")
    return v.to(device)
