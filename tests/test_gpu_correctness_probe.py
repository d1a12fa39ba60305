"""The sharpness probe's vectors on an accelerator, shown on CPU with a Hessian that claims the
``meta`` device: a restored warm-start vector (checkpoints load to the CPU) is moved to the
Hessian's device and dtype, and start vectors are drawn from a CPU generator, so a CPU and a GPU
probe start from the same vector."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch

from optbench.diagnostics import probe as probe_module
from optbench.diagnostics.probe import SharpnessProbe
from optbench.diagnostics.vectors import random_vector


@dataclass
class _MetaHessian:
    dim: int = 6
    dtype: torch.dtype = torch.float64
    device: torch.device = field(default_factory=lambda: torch.device("meta"))


def _solver_starts(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """Replace both solvers by one that records its start vector."""
    starts: list[torch.Tensor] = []
    monkeypatch.setattr(probe_module, "lanczos", lambda matvec, start, **_: starts.append(start))
    monkeypatch.setattr(probe_module, "power_iteration", lambda matvec, start, **_: starts.append(start))
    return starts


@pytest.mark.parametrize("method", ["power", "lanczos"])
def test_a_restored_vector_moves_to_the_hessians_device_and_dtype(monkeypatch, method) -> None:
    starts = _solver_starts(monkeypatch)
    probe = SharpnessProbe(method=method)
    probe.load_state_dict({"vector": torch.ones(6, dtype=torch.float32)})  # as map_location="cpu"
    probe._top(None, _MetaHessian(), step=0, previous=probe._vector)
    (start,) = starts
    assert (start.device, start.dtype, start.shape) == (torch.device("meta"), torch.float64, (6,))


def test_start_vectors_are_drawn_on_the_cpu_whatever_the_hessians_device(monkeypatch) -> None:
    starts = _solver_starts(monkeypatch)
    generators: list[torch.Generator] = []

    def spy(*args, generator: torch.Generator, **kwargs) -> torch.Tensor:
        generators.append(generator)
        return random_vector(*args, generator=generator, **kwargs)

    monkeypatch.setattr(probe_module, "random_vector", spy)
    SharpnessProbe(seed=3)._top(None, _MetaHessian(), step=40, previous=None)
    (generator,) = generators
    assert (generator.device, generator.initial_seed()) == (torch.device("cpu"), 43)
    assert starts[0].device == torch.device("meta")
