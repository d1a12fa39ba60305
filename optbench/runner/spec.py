"""A run's spec: its config, checked and resolved, and what its launch decided (names, run dir,
sweep), as one typed record. :func:`resolve` makes it; nothing after it reads Hydra.

:func:`resolve` is pure and loads no data: it checks what the config shows by itself
(:func:`optbench.runner.config.check_composed`: schema keys, interpolations, seed), that the run
dir can be made (a probe directory is made and removed there), task arguments, optimizer
hyperparameters (built on a stand-in parameter of each role), schedule, probe, logger options,
device, cadences, the EMA's decay, the warm start's and the target's settings (a warm start's
source is read when the run starts: a finished run is reused without it) and, under torchrun,
what several processes cannot run, and turns a token budget into ``train.steps`` in the spec's
own copy of the config.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from optbench.contract import ParamRole, needs_create_graph, needs_whole_matrices
from optbench.errors import OptbenchError
from optbench.runner import distributed
from optbench.runner.build import build_optimizer, build_probe, build_schedule, build_task
from optbench.runner.config import Parallel, check_composed, check_output_dir
from optbench.runner.device import resolve_device
from optbench.runner.identity import run_id
from optbench.runner.plugins import check_arguments, locate_target
from optbench.runner.run_dir import RunDir


@dataclass(frozen=True)
class SweepJob:
    """A run that is one job of a sweep."""

    sweep_dir: Path
    num: int  # the job's number in the sweep

    @property
    def group(self) -> str:
        """The sweep's W&B group: its dir's last two parts (date/time by default)."""
        return "/".join(self.sweep_dir.parts[-2:])


@dataclass(frozen=True)
class RunSpec:
    config: DictConfig  # resolved (no interpolations left), train.steps set from a token budget
    device: torch.device
    run_id: str  # the identity of the config as composed (what the run store files it under)
    run_dir: RunDir | None = None  # None: a config built, not run (memory counts, figures)
    task: str | None = None  # the config names chosen: task=..., optimizer=...
    optimizer: str | None = None
    overrides: tuple[str, ...] = ()  # as given on the command line
    name: str | None = None  # the run's name in W&B
    sweep: SweepJob | None = None

    @cached_property
    def resolved(self) -> dict[str, Any]:
        """The config as plain data (what config.yaml holds)."""
        return OmegaConf.to_container(self.config, resolve=True)


def _check_parallel(cfg: DictConfig, optimizer: torch.optim.Optimizer, probe: Any) -> None:
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
    if cfg.train.ema is not None:
        raise OptbenchError("train.parallel=fsdp gives each process a shard of every matrix, but train.ema "
                            "averages whole ones; use train.parallel=ddp, or train.ema=null")


def _check_run_options(cfg: DictConfig) -> None:
    """The EMA's decay, the warm start's step (its source is read when the run starts) and the
    target's settings."""
    train, target = cfg.train, cfg.target
    if train.ema is not None and not 0.0 < train.ema < 1.0:
        raise OptbenchError(f"train.ema={train.ema} must be in (0, 1) (the EMA's decay, e.g. 0.999), "
                            "or null for no averaging")
    warm = train.warm_start
    if warm.step is not None and warm.run is None:
        raise OptbenchError(f"train.warm_start.step={warm.step} needs train.warm_start.run=DIR (the run "
                            "whose checkpoint to start from)")
    if warm.step is not None and not 0 < warm.step < train.steps:
        raise OptbenchError(f"train.warm_start.step={warm.step} must be a positive step below "
                            f"train.steps={train.steps} (a warm-started run trains on from it)")
    if (target.metric is None) != (target.value is None):
        raise OptbenchError("target.metric and target.value go together: set both "
                            "(e.g. target.metric=eval/loss target.value=0.5), or neither")
    if target.stop and target.metric is None:
        raise OptbenchError("target.stop=true needs a target: set target.metric and target.value")
    if target.value is not None and not math.isfinite(target.value):
        raise OptbenchError(f"target.value={target.value} must be a finite number")


def _check(cfg: DictConfig) -> torch.device:
    """Raise OptbenchError for anything wrong in ``cfg`` that shows without loading data; set
    ``train.steps`` from ``train.tokens``. Returns the device."""
    train = cfg.train
    for key in ("steps", "log_every", "eval_every", "checkpoint_every"):
        if train[key] < 1:
            raise OptbenchError(f"train.{key}={train[key]} must be a positive integer")
    device = resolve_device(cfg.device)
    task = build_task(cfg.task)
    if train.tokens is not None:
        per_step = task.work_per_step()
        if not per_step:
            raise OptbenchError("train.tokens needs a task with a fixed number of tokens per step "
                                "(LLaMA text: task.data.pack=true); set train.steps instead")
        train.steps = math.ceil(train.tokens / per_step)
    _check_run_options(cfg)
    stand_in = torch.nn.ParameterDict(
        {role.value: torch.nn.Parameter(torch.zeros(2, 2)) for role in ParamRole}
    )
    optimizer = build_optimizer(cfg.optimizer, stand_in, {r.value: r for r in ParamRole})
    if train.compile and needs_create_graph(optimizer):  # the loop's backward(create_graph=True)
        raise OptbenchError("train.compile=true cannot run this optimizer: it differentiates through the "
                            "gradient (AdaHessian, Sophia-H), and a compiled backward has no double "
                            "backward; set train.compile=false")
    build_schedule(cfg, optimizer)
    probe = build_probe(cfg)
    if distributed.world_size() > 1:
        _check_parallel(cfg, optimizer, probe)
    if cfg.logger and cfg.logger.get("_target_"):
        options = OmegaConf.to_container(cfg.logger, resolve=True)
        options = {k: v for k, v in options.items() if not k.startswith("_")}
        check_arguments("logger", locate_target("logger", cfg.logger), options)
    return device


def check(cfg: DictConfig) -> None:
    """Raise OptbenchError for anything wrong in one run's composed config that
    :func:`~optbench.runner.config.check_composed` (run by ``compose_checked``, which made
    ``cfg``) does not see, as :func:`resolve` would: a sweep checks each of its values this way
    before its first job starts."""
    _check(copy.deepcopy(cfg))


def resolve(cfg: DictConfig, run_dir: str | Path | None = None, *, task: str | None = None, optimizer: str | None = None,
            overrides: tuple[str, ...] | list[str] = (), name: str | None = None,
            sweep: SweepJob | None = None) -> RunSpec:
    """Check ``cfg`` (one run's composed config) and return its spec; ``cfg`` is left as it was.

    Interpolations are resolved here, while Hydra's resolvers (``${hydra:...}``) can still be
    read: the spec's config is plain values. The run dir, if given, must be a directory that
    can be written, or made.
    """
    check_composed(cfg)
    if run_dir is not None:
        check_output_dir("hydra.run.dir" if sweep is None else "store", run_dir)
    identity = run_id(OmegaConf.to_container(cfg, resolve=True))
    config = copy.deepcopy(cfg)
    OmegaConf.resolve(config)
    device = _check(config)
    return RunSpec(config=config, device=device, run_id=identity,
                   run_dir=None if run_dir is None else RunDir(run_dir), task=task,
                   optimizer=optimizer, overrides=tuple(overrides),
                   name=name or f"{task}-{optimizer}", sweep=sweep)
