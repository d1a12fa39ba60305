"""Building a run's objects from its config: the one path used by runs and by up-front checks."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf

from optbench.config import Parallel
from optbench.diagnostics.probe import SharpnessProbe
from optbench.errors import OptbenchError
from optbench.optimizers.build import build_optimizer
from optbench.optimizers.capabilities import needs_create_graph, needs_whole_matrices
from optbench.optimizers.roles import ParamRole
from optbench.plugins import check_arguments, instantiate, locate_target
from optbench.runner import distributed
from optbench.runner.device import resolve_device
from optbench.runner.seeding import derive_seed
from optbench.tasks.base import Task


def build_task(cfg: DictConfig) -> Task:
    task = instantiate("task", cfg.task)
    if not isinstance(task, Task):
        raise TypeError(f"task._target_ {cfg.task._target_} does not implement optbench Task")
    return task


def build_schedule(cfg: DictConfig, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    multiplier: Callable[[int], float] = instantiate("schedule", cfg.schedule, total_steps=cfg.train.steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)


def build_probe(cfg: DictConfig) -> SharpnessProbe | None:
    if not (cfg.diagnostics and cfg.diagnostics.get("_target_")):
        return None
    return instantiate("diagnostics", cfg.diagnostics, seed=derive_seed(cfg.seed, "probe"))


def _check_parallel(cfg: DictConfig, optimizer: torch.optim.Optimizer, probe: SharpnessProbe | None) -> None:
    """Refuse, before the processes of a torchrun launch meet, what they cannot run."""
    if needs_create_graph(optimizer):
        raise OptbenchError("this optimizer differentiates through the gradient (AdaHessian, Sophia-H), "
                            "which DDP and FSDP do not support; run it in a single process, without torchrun")
    if cfg.train.parallel != Parallel.fsdp:
        return
    if needs_whole_matrices(optimizer):
        raise OptbenchError(
            f"train.parallel=fsdp gives each process a shard of every matrix, but "
            f"{cfg.optimizer._target_.rsplit('.', 1)[-1]} updates whole matrices; "
            "use train.parallel=ddp, or an elementwise optimizer such as adamw"
        )
    if probe is not None:
        raise OptbenchError("train.parallel=fsdp gives each process a shard of every matrix, but curvature "
                            "probes (diagnostics) need whole ones; use train.parallel=ddp")


@dataclass
class CheckedConfig:
    task: Task
    device: torch.device
    probe: SharpnessProbe | None


def check_config(cfg: DictConfig) -> CheckedConfig:
    """Raise OptbenchError for anything wrong in ``cfg`` that can be found without loading data:
    task arguments, optimizer hyperparameters (built on a stand-in parameter of each role),
    schedule, logger options, device, cadences, and under torchrun what several processes
    cannot run. A token budget is turned into ``train.steps`` here."""
    train = cfg.train
    for key in ("steps", "log_every", "eval_every", "checkpoint_every"):
        if train[key] < 1:
            raise OptbenchError(f"train.{key}={train[key]} must be a positive integer")
    device = resolve_device(cfg.device)
    task = build_task(cfg)
    if train.tokens is not None:
        per_step = task.work_per_step()
        if not per_step:
            raise OptbenchError("train.tokens needs a task with a fixed number of tokens per step; "
                                "set train.steps instead")
        train.steps = math.ceil(train.tokens / per_step)
    stand_in = torch.nn.ParameterDict(
        {role.value: torch.nn.Parameter(torch.zeros(2, 2)) for role in ParamRole}
    )
    optimizer = build_optimizer(cfg.optimizer, stand_in, {r.value: r for r in ParamRole})
    build_schedule(cfg, optimizer)
    probe = build_probe(cfg)
    if distributed.world_size() > 1:
        _check_parallel(cfg, optimizer, probe)
    if cfg.logger and cfg.logger.get("_target_"):
        options = OmegaConf.to_container(cfg.logger, resolve=True)
        options = {k: v for k, v in options.items() if not k.startswith("_")}
        check_arguments("logger", locate_target("logger", cfg.logger), options)
    return CheckedConfig(task, device, probe)
