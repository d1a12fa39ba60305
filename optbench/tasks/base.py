"""The task contract: everything the runner needs from a task, and nothing more.

A task is built from ``configs/task/<name>.yaml`` (its ``_target_`` names the class, the other keys
are constructor arguments). The constructor only checks its arguments, cheaply, so that a bad
config fails before any data is loaded; :meth:`Task.prepare` does the loading.

One optimizer step consumes one *step batch*: a list of micro-batches (one, unless the task uses
gradient accumulation). The runner back-propagates ``loss(mb) * loss_weight(mb) / sum(weights)``
for each micro-batch, so the step's loss is the weighted mean over the whole step batch, the same
whatever the micro-batch size.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from optbench.errors import OptbenchError
from optbench.optimizers.roles import ParamRole

Batch = Any  # a micro-batch: whatever ``Task.loss`` accepts (tensors already on the device)


def share(rows: int, rank: int, world_size: int) -> slice:
    """The rows of process ``rank``'s equal share of a micro-batch of ``rows`` rows."""
    if rows % world_size:
        raise OptbenchError(
            f"a micro-batch of {rows} rows does not split evenly between {world_size} processes; "
            f"make the batch size (the micro-batch for LM tasks) a multiple of {world_size}"
        )
    size = rows // world_size
    return slice(rank * size, (rank + 1) * size)


class BatchStream(Protocol):
    """An endless, deterministic stream of step batches whose position can be saved and restored."""

    def __iter__(self) -> Iterator[list[Batch]]: ...

    def __next__(self) -> list[Batch]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


class Task(abc.ABC):
    """A training problem: data, a model, a loss and its evaluation."""

    #: what ``perf/<unit>_per_second`` counts: ``"examples"`` or ``"tokens"``.
    work_unit: ClassVar[str] = "examples"

    @abc.abstractmethod
    def prepare(self, device: torch.device, dtype: torch.dtype) -> None:
        """Load or generate the data and place it on ``device`` (floating data in ``dtype``)."""

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """A freshly initialised model; the runner seeds torch before the call and moves it after.

        Must work before :meth:`prepare` and under ``torch.device("meta")``, so that memory can be
        estimated for any model size without loading data or allocating weights.
        """

    def param_roles(self, model: nn.Module) -> dict[str, ParamRole]:
        """The role of every parameter, by name. Default: 2-D weights are matrices, the rest vectors."""
        return {
            name: ParamRole.MATRIX if p.ndim == 2 else ParamRole.VECTOR
            for name, p in model.named_parameters()
        }

    @abc.abstractmethod
    def train_stream(self, seed: int) -> BatchStream:
        """The training batches, in an order fixed by ``seed``."""

    @abc.abstractmethod
    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The scalar training loss of one micro-batch (a mean over its ``loss_weight`` units)."""

    def loss_weight(self, batch: Batch) -> int:
        """How many units ``loss`` averages over (examples; non-pad tokens for LMs)."""
        return self.work(batch)

    def shard(self, batch: Batch, rank: int, world_size: int) -> Batch:
        """Process ``rank``'s share of the examples of ``batch`` when ``world_size`` processes
        train on each step batch (torchrun); ``loss_weight`` must add up over the shares.
        Default: the same rows of each tensor of a tuple (or NamedTuple) batch."""
        if not isinstance(batch, tuple):
            raise OptbenchError(f"{type(self).__name__} cannot split its batches between processes; "
                                "run it in a single process")
        rows = share(len(batch[0]), rank, world_size)
        parts = [t[rows] for t in batch]
        return type(batch)(*parts) if hasattr(batch, "_fields") else tuple(parts)

    @abc.abstractmethod
    def work(self, batch: Batch) -> int:
        """Work units (``work_unit``) in one micro-batch, for throughput and token counts."""

    def work_per_step(self) -> int | None:
        """Work units per optimizer step when every step has the same (for token budgets)."""
        return None

    def flops_per_work(self) -> float | None:
        """Training FLOPs (forward + backward) per work unit, for ``perf/mfu``; None if unknown."""
        return None

    @abc.abstractmethod
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Evaluation metrics, keyed ``eval/<name>``. Called under ``torch.no_grad`` in eval mode."""

    @abc.abstractmethod
    def probe_batches(self, seed: int, size: int | None = None) -> list[Batch]:
        """A fixed set of micro-batches for curvature probes: ``size`` examples (sequences for
        LMs) chosen by ``seed``, or the task's default set when ``size`` is None."""
