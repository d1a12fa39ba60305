"""Multi-process training of one run under torchrun: the process group, values every rank must
agree on, and the parallel model (DDP, or FSDP2 sharding for models too large for one device).

Every rank composes the same config and draws the same step batches from the seeded stream, then
trains on its own share of the rows of each micro-batch (``Task.shard``); only rank 0 writes the
run dir and prints. With a world size of 1 (no torchrun) every function here is a no-op, so a
single process runs exactly as without this module.
"""

from __future__ import annotations

import contextlib
import copy
import os
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

T = TypeVar("T")


def world_size() -> int:
    """The number of processes training this run (torchrun's ``WORLD_SIZE``; 1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's index on its node: its GPU is ``cuda:LOCAL_RANK``."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Rank 0: the process that writes the run dir and prints."""
    return rank() == 0


def init() -> None:
    """Join torchrun's process group (once): gloo for CPU tensors (and objects), plus NCCL for
    CUDA tensors where there is CUDA."""
    if world_size() == 1 or dist.is_initialized():
        return
    dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")


def shutdown(finished: bool) -> None:
    """Leave the process group. ``finished``: every rank got here normally, so first wait for
    all of them: a rank that tears the group down while a peer's gloo threads still talk to it
    can make that peer abort at exit. After a failure, leave at once: a peer may never come."""
    if not dist.is_initialized():
        return
    if finished:
        dist.barrier()
    dist.destroy_process_group()


def agree(value: T) -> T:
    """Rank 0's ``value``, on every rank: for choices that could differ between ranks (a
    ``${now:...}`` run dir, a decision to stop)."""
    if world_size() == 1:
        return value
    init()
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def agree_max(value: int, device: torch.device) -> int:
    """The largest of the ranks' ``value``: a stop signal that reached any rank stops all of them
    at the same step (a cheap all-reduce, unlike :func:`agree`'s broadcast of an object)."""
    if world_size() == 1:
        return value
    box = torch.tensor([value], device=device)
    dist.all_reduce(box, op=dist.ReduceOp.MAX)
    return int(box.item())


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> None:
    """Sum ``tensor`` over the ranks, in place."""
    if world_size() > 1:
        dist.all_reduce(tensor)


def parallelize(model: nn.Module, strategy: str) -> nn.Module:
    """The module that training steps run through: ``model`` itself in a single process; under
    torchrun a DDP wrapper, or, for ``fsdp``, ``model`` sharded in place by FSDP2 (one unit per
    block of each ``nn.ModuleList``, then the root). Build the optimizer after this call: FSDP
    replaces the parameters by sharded ones."""
    if world_size() == 1:
        return model
    init()
    device = next(model.parameters()).device
    if device.type == "cuda":
        torch.cuda.set_device(device)  # this process's GPU (cuda:LOCAL_RANK), for NCCL and FSDP
    if strategy == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(device.type, (world_size(),))
        for module in reversed(list(model.modules())):  # inner units before the ones around them
            if isinstance(module, nn.ModuleList):
                for block in module:
                    fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model
    return _DDP(model, device_ids=[device] if device.type == "cuda" else None)


class _DDP(DistributedDataParallel):
    """DDP that also answers for the attributes of the model it wraps, as torch.compile's wrapper
    does: a task's loss may read them (logreg's L2 term reads ``model.weight``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def gradient_sync(model: nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """Around the forward and backward of a micro-batch: without ``sync``, DDP skips its
    all-reduce and the gradients accumulate locally until the step's last micro-batch."""
    if sync or not isinstance(model, DistributedDataParallel):
        return contextlib.nullcontext()
    return model.no_sync()


def full_state(state: Any) -> Any:
    """A state dict with every sharded (FSDP) tensor gathered whole onto the CPU: the format of a
    single-process state dict, so checkpoints are the same files however a run was trained. A
    collective under FSDP: every rank must call it, in the same order."""
    if world_size() == 1:
        return state
    from torch.distributed.tensor import DTensor  # slow to import: only under torchrun

    def gather(value: Any) -> Any:
        if isinstance(value, DTensor):
            return value.full_tensor().cpu()
        if isinstance(value, dict):
            full = copy.copy(value)  # of the same type, with the same attributes (``_metadata``)
            full.update((key, gather(item)) for key, item in value.items())
            return full
        if type(value) in (list, tuple):
            return type(value)(gather(item) for item in value)
        return value

    return gather(state)


def _shard_like(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``full`` split as ``like`` is, if ``like`` is sharded. Every rank holds ``full`` (they
    all read the checkpoint), so each keeps its own shard without communication."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if not isinstance(like, DTensor):
        return full
    return distribute_tensor(full.to(like.device), like.device_mesh, like.placements, src_data_rank=None)


def load_full_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    model_state: dict[str, Any],
    optimizer_state: dict[str, Any],
) -> None:
    """Load state dicts in the single-process format (see :func:`full_state`) into a model and
    optimizer that may be sharded. Only optimizer states shaped like their parameter are
    sharded: FSDP is refused for optimizers with other (whole-matrix) states."""
    several = world_size() > 1  # then the parameters may be sharded
    if several:
        current = model.state_dict()
        model_state = {key: _shard_like(value, current[key]) for key, value in model_state.items()}
    model.load_state_dict(model_state)
    optimizer.load_state_dict(optimizer_state)
    if several:
        for param, state in optimizer.state.items():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape:
                    state[key] = _shard_like(value, param)
