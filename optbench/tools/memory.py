"""Memory of weights, gradients and optimizer states for any model size, without allocating.

The model is built on the meta device and the optimizer takes one real ``step()`` there, so the
states counted are exactly those the optimizer creates (moments, projectors, step counters), by
the same code path as a run: for a model that fits, the estimate equals the bytes a real step
leaves behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from omegaconf import DictConfig, OmegaConf
from torch.utils._python_dispatch import TorchDispatchMode

from optbench.runner.build import build
from optbench.runner.config import Precision
from optbench.runner.memory import optimizer_state_bytes, param_bytes, tensor_bytes
from optbench.runner.spec import resolve

# bf16 here means weights, gradients and states held in bf16, as the GaLore paper's estimates
# assume (a precision=bf16 *run* keeps fp32 weights under autocast).
DTYPES = {Precision.fp32: torch.float32, Precision.fp64: torch.float64, Precision.bf16: torch.bfloat16}
PUBLISHED = Path(__file__).with_name("published_memory.yaml")


@dataclass
class MemoryEstimate:
    weights: int
    gradients: int
    optimizer_states: int
    parameters: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer_states


class _MetaScalars(TorchDispatchMode):
    """Meta tensors have no values: an optimizer that reads a scalar (Adafactor reads its step
    count with ``.item()``) gets a stand-in 1. Only the states' shapes are counted, and those do
    not depend on it."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default and args[0].device.type == "meta":
            return 1.0 if args[0].is_floating_point() else 1
        return func(*args, **(kwargs or {}))


def measure(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> MemoryEstimate:
    """Take one optimizer step with gradients of the parameters' shape, then count bytes."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.zeros_like(p)
    with _MetaScalars():
        optimizer.step()
    return MemoryEstimate(
        weights=param_bytes(model),
        gradients=tensor_bytes(p.grad for p in params),
        optimizer_states=optimizer_state_bytes(optimizer),
        parameters=sum(p.numel() for p in model.parameters()),
    )


def estimate(cfg: DictConfig) -> MemoryEstimate:
    """The memory of the run ``cfg`` (a composed config, with or without its ``hydra`` node)."""
    job = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    built = build(resolve(job), meta_dtype=DTYPES[Precision(job.precision)])
    return measure(built.model, built.optimizer)


@dataclass
class Published:
    source: str
    method: str
    gigabytes: float  # weights + optimizer states


def published(task: str, optimizer: str) -> Published | None:
    """The GaLore paper's memory figure for this task and optimizer, if it has one."""
    table = yaml.safe_load(PUBLISHED.read_text())
    method = table["optimizers"].get(optimizer)
    gigabytes = table["figures"].get(method, {}).get(task)
    return None if gigabytes is None else Published(table["source"], method, gigabytes)
