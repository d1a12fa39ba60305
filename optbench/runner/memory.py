"""Exact memory accounting: bytes held by parameters and optimizer states, and peak memory."""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def _tensors(obj: Any) -> Iterable[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _tensors(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _tensors(value)


def _local(t: torch.Tensor) -> torch.Tensor:
    """The shard this process holds of a sharded (FSDP) tensor, else ``t``."""
    dtensor = sys.modules.get("torch.distributed.tensor")  # never imported: nothing is sharded
    return t.to_local() if dtensor is not None and isinstance(t, dtensor.DTensor) else t


def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the storages behind ``tensors``, each storage counted once (views share theirs);
    of a sharded tensor (FSDP), the shard this process holds."""
    seen: set[tuple[str, int]] = set()
    total = 0
    for t in tensors:
        t = _local(t)
        storage = t.untyped_storage()
        key = (str(t.device), storage.data_ptr()) if t.device.type != "meta" else ("meta", id(t))
        if key in seen:
            continue
        seen.add(key)
        total += storage.nbytes() if t.device.type != "meta" else t.numel() * t.element_size()
    return total


def param_bytes(model: torch.nn.Module) -> int:
    return tensor_bytes(model.parameters())


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Every tensor the optimizer holds in its state (moments, step counters, projectors, ...)."""
    return tensor_bytes(_tensors(list(optimizer.state.values())))


def peak_bytes(device: torch.device) -> int:
    """CUDA peak allocated bytes since the last reset; on CPU the process's peak resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB, macOS bytes


class PeakTracker:
    """The training peak, kept apart from the peaks of curvature probes.

    On CUDA the allocator's peak counter is reset around each probe, so ``training()`` is the
    peak of training steps alone and ``probe()`` measures the probe's own. A process's peak
    resident set (the CPU figure) cannot be reset: there it includes probes.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._before_probes = 0  # the training peak carried over the resets

    def training(self) -> int:
        return max(self._before_probes, peak_bytes(self.device))

    def probe(self, run: Callable[[], T]) -> tuple[T, int]:
        """Run ``run`` and return its result and its peak bytes."""
        if self.device.type != "cuda":
            return run(), peak_bytes(self.device)
        self._before_probes = self.training()
        torch.cuda.reset_peak_memory_stats(self.device)
        result = run()
        probe_peak = torch.cuda.max_memory_allocated(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        return result, probe_peak
