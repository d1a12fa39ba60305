"""The one build path: task -> model -> optimizer -> schedule (and probe), from a resolved
:class:`~optbench.runner.spec.RunSpec`. Runs, ``optbench memory``, ``optbench sharpness`` and the
figures all build through :func:`build`; :mod:`optbench.runner.spec` builds the same pieces on
stand-ins to check a config without loading data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from optbench.contract import ParamRole, Task
from optbench.diagnostics.probe import SharpnessProbe
from optbench.optimizers.router import RoleRouter
from optbench.runner import distributed
from optbench.runner.device import full_fp32, param_dtype
from optbench.runner.plugins import instantiate
from optbench.runner.seeding import derive_seed

if TYPE_CHECKING:
    from optbench.runner.spec import RunSpec


def build_task(node: DictConfig) -> Task:
    """The task of a ``task`` config node, constructed (its arguments checked), no data loaded."""
    task = instantiate("task", node)
    if not isinstance(task, Task):
        raise TypeError(f"task._target_ {node._target_} does not implement optbench.contract.Task")
    return task


def param_groups(model: nn.Module, roles: dict[str, ParamRole]) -> list[dict]:
    """One group per role present, in ``ParamRole`` order, each tagged ``{"role": ...}``."""
    by_role: dict[ParamRole, list[nn.Parameter]] = {role: [] for role in ParamRole}
    for name, p in model.named_parameters():
        if p.requires_grad:
            by_role[ParamRole(roles[name])].append(p)
    return [{"params": ps, "role": role.value} for role, ps in by_role.items() if ps]


def build_optimizer(node: DictConfig, model: nn.Module, roles: dict[str, ParamRole]) -> torch.optim.Optimizer:
    """The optimizer of an ``optimizer`` config node over ``model``'s parameters, by role.

    A node with a ``fallback`` routes ``matrix`` parameters to its own ``_target_`` and every
    other role (embedding, head, vector) to the fallback (``optimizer.fallback.lr=...`` sets it).
    """
    groups = param_groups(model, roles)
    fallback = node.get("fallback")
    if fallback is None:
        return instantiate("optimizer", node, groups, skip=("params",))
    main = OmegaConf.masked_copy(node, [key for key in node if key != "fallback"])
    matrix = [g for g in groups if g["role"] == ParamRole.MATRIX.value]
    others = [g for g in groups if g["role"] != ParamRole.MATRIX.value]
    parts = {}
    if matrix:
        parts["matrix"] = instantiate("optimizer", main, matrix, skip=("params",))
    if others:
        parts["fallback"] = instantiate("optimizer.fallback", fallback, others, skip=("params",))
    return RoleRouter(parts)


def build_schedule(cfg: DictConfig, optimizer: torch.optim.Optimizer,
                   steps: int | None = None) -> torch.optim.lr_scheduler.LambdaLR:
    """The schedule over ``steps`` steps (``train.steps`` by default; a warm-started run's
    schedule spans the steps it has left), from the optimizer's lrs."""
    total = cfg.train.steps if steps is None else steps
    multiplier: Callable[[int], float] = instantiate("schedule", cfg.schedule, total_steps=total)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)


def build_probe(cfg: DictConfig) -> SharpnessProbe | None:
    if not (cfg.diagnostics and cfg.diagnostics.get("_target_")):
        return None
    return instantiate("diagnostics", cfg.diagnostics, seed=derive_seed(cfg.seed, "probe"))


@dataclass
class Built:
    task: Task
    model: nn.Module
    #: what training steps run through: ``model`` in one process; under torchrun a DDP wrapper
    #: of it, or ``model`` itself sharded by FSDP (see :func:`distributed.parallelize`)
    parallel: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    probe: SharpnessProbe | None


def build(spec: RunSpec, *, meta_dtype: torch.dtype | None = None) -> Built:
    """Build the run of ``spec``: the task prepares its data on the spec's device, the model is
    initialised from the run's model seed and parallelised, then the optimizer, schedule and probe.

    With ``meta_dtype``, the model is built on the meta device in that dtype instead, and no data
    is loaded: memory can then be counted for any model size without allocating it.
    """
    cfg = spec.config
    task = build_task(cfg.task)
    if meta_dtype is not None:
        with torch.device("meta"):
            model = parallel = task.build_model().to(meta_dtype)
    else:
        full_fp32()  # runs set it before env.json records it; `optbench sharpness` builds here alone
        dtype = param_dtype(cfg.precision)
        task.prepare(spec.device, dtype)
        torch.manual_seed(derive_seed(cfg.seed, "model"))
        model = task.build_model().to(device=spec.device, dtype=dtype)
        parallel = distributed.parallelize(model, cfg.train.parallel)  # before the optimizer
    optimizer = build_optimizer(cfg.optimizer, model, task.param_roles(model))
    return Built(task, model, parallel, optimizer, build_schedule(cfg, optimizer), build_probe(cfg))
