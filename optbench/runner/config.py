"""Where the Hydra config tree lives, its typed schema, composition for `show` and tests, and
the checks of a composed config that need nothing built (:func:`check_composed`).

The schema types the top-level keys, so Hydra rejects ``train.steps=abc`` at composition.
Plugin groups (task, optimizer, schedule, logger) stay untyped here: their keys are checked
against the plugin's own signature when it is built (see :mod:`optbench.runner.plugins`).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from optbench.errors import OptbenchError, first_line
from optbench.runner.target import Mode


def config_dir() -> Path:
    """The config tree: inside the package when installed from a wheel, else the repo's configs/."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "configs"
    return packaged if packaged.is_dir() else package.parent / "configs"


class Precision(str, Enum):
    fp32 = "fp32"
    fp64 = "fp64"
    bf16 = "bf16"  # bf16 autocast on CUDA; parameters and optimizer states stay fp32


class Parallel(str, Enum):
    """How the processes of a torchrun launch share one run's model (one process: no effect)."""

    ddp = "ddp"  # a replica per process, gradients all-reduced
    fsdp = "fsdp"  # parameters, gradients and optimizer states sharded (FSDP2)


@dataclass
class WarmStartConfig:
    """Start from another run's checkpoint (optbench.runner.warm_start)."""

    run: str | None = None  # that run's dir
    step: int | None = None  # its checkpoints/step_N.pt, or None: its latest checkpoint


@dataclass
class TrainConfig:
    steps: int = 500
    tokens: int | None = None
    log_every: int = 10
    eval_every: int = 100
    grad_clip: float | None = None
    checkpoint_every: int = 1000
    keep_checkpoints: bool = False
    divergence_factor: float = 1e3
    compile: bool = False
    parallel: Parallel = Parallel.ddp
    ema: float | None = None  # β of an EMA of the weights, evaluated as eval_ema/* (optbench.runner.averaging)
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)


@dataclass
class TargetConfig:
    """Time to target (optbench.runner.target): where ``metric`` first meets ``value``."""

    metric: str | None = None
    value: float | None = None
    mode: Mode = Mode.min
    stop: bool = False  # end the run at the evaluation that first meets it


@dataclass
class ObjectiveConfig:
    metric: str = "train/loss"
    penalty: float = 1e10


@dataclass
class RunConfig:
    task: Any = MISSING
    optimizer: Any = MISSING
    schedule: Any = MISSING
    logger: Any = field(default_factory=dict)
    diagnostics: Any = field(default_factory=dict)
    data: Any = None  # the `data` group writes into task.data, never here
    seed: int = 0
    device: str = "auto"
    precision: Precision = Precision.fp32
    train: TrainConfig = field(default_factory=TrainConfig)
    store: str = "runs/store"
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    target: TargetConfig = field(default_factory=TargetConfig)


#: accepted run seeds: numpy's SeedSequence takes no negative integer, torch.manual_seed none
#: above 2**64 - 1 (see optbench.runner.seeding)
SEEDS = range(2**64)
#: the config groups whose keys are a plugin's arguments, checked against its signature when built
PLUGIN_GROUPS = ("task", "optimizer", "schedule", "logger", "diagnostics")


def _raw(cfg: Any, full_key: str) -> Any:
    """The value at ``full_key`` (``a.b[0]``) as written, interpolations unresolved."""
    from omegaconf import OmegaConf

    value: Any = OmegaConf.to_container(cfg, resolve=False)
    for part in re.findall(r"[^.\[\]]+", full_key):
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (KeyError, IndexError, TypeError, ValueError):
            return "?"
    return value


def _check_interpolations(cfg: Any) -> None:
    """Resolve every ``${...}`` outside the ``hydra`` node: a missing key or resolver is one line."""
    from omegaconf import Container, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    for key in cfg:
        if key == "hydra":
            continue
        try:
            value = cfg[key]
            if isinstance(value, Container):
                OmegaConf.to_container(value, resolve=True)
        except OmegaConfBaseException as err:
            raise _unresolvable(cfg, err, key) from None


def _unresolvable(cfg: Any, err: Exception, key: str) -> OptbenchError:
    full_key = getattr(err, "full_key", None) or key
    reason = first_line(err)
    return OptbenchError(f"{full_key}={_raw(cfg, full_key)} cannot be resolved: {reason}; an "
                         "interpolation must name an existing key (${a.b}) or resolver (${oc.env:VAR})")


def _check_typed(node: Any, schema: type, path: str = "") -> None:
    """Keys not in ``schema`` (a misspelling added with ``+``/``++`` would have no effect), keys
    it needs that were deleted (``~key``), and nan numbers, in a node typed by ``schema``."""
    import dataclasses
    import typing

    from omegaconf import OmegaConf

    hints = typing.get_type_hints(schema)
    fields = [f.name for f in dataclasses.fields(schema)]
    where = path.rstrip(".") or "the config"
    raw = OmegaConf.to_container(node, resolve=False)
    for key in node:
        if key not in fields and not (key == "hydra" and not path):
            raise OptbenchError(f"{path}{key}={_raw(node, str(key))} is not a config key; "
                                f"{where} accepts: {', '.join(fields)}")
    for name in fields:
        full = f"{path}{name}"
        if name not in raw or raw[name] == "???":  # as written, no interpolation resolved
            choose = (f"choose one: {full}=NAME (optbench list)" if name in PLUGIN_GROUPS
                      else f"set {full}=VALUE")
            raise OptbenchError(f"{full} is missing (deleted with ~{full}?) but a run needs it; "
                                f"drop that override or {choose}")
        value = raw[name]  # interpolations are checked after the keys
        if dataclasses.is_dataclass(hints[name]):
            if not isinstance(value, dict):
                raise OptbenchError(f"{full}={value} is not a mapping; {full} takes keys: "
                                    f"{', '.join(f.name for f in dataclasses.fields(hints[name]))}")
            _check_typed(node[name], hints[name], f"{full}.")
        elif isinstance(value, float) and math.isnan(value):
            raise OptbenchError(f"{full}=nan is not a number; accepted: a number")


def check_composed(cfg: Any) -> None:
    """Raise OptbenchError for a mistake a composed config shows by itself, before anything is
    built and whatever the machine: keys outside the schema or deleted from it, interpolations
    that do not resolve, a seed out of range, and what a plugin group's node shows without its
    target (nan or infinite numbers, options for a config that builds nothing).

    ``${hydra:...}`` interpolations need Hydra's config set (Hydra sets it in a job)."""
    from omegaconf import DictConfig

    from optbench.runner.plugins import check_node

    _check_typed(cfg, RunConfig)
    _check_interpolations(cfg)
    if cfg.data is not None:
        raise OptbenchError(f"data={_raw(cfg, 'data')}: the data group (data=NAME) writes into "
                            "task.data; set task.data.KEY instead")
    if cfg.seed not in SEEDS:
        raise OptbenchError(f"seed={cfg.seed} is out of range; accepted: an integer from 0 to 2**64 - 1")
    for group in PLUGIN_GROUPS:
        node = cfg[group]
        if not isinstance(node, DictConfig):
            raise OptbenchError(f"{group}={_raw(cfg, group)} is not a {group} config; "
                                f"choose one: {group}=NAME (optbench list)")
        check_node(group, node)


def check_output_dir(key: str, path: str | Path) -> None:
    """Raise OptbenchError unless ``path`` (the value of ``key``) is a directory a run can write
    in, or can become one: the path itself, if it exists, a directory; its nearest existing
    ancestor a directory where a directory can be made. That is tried (and undone), since
    ``os.access`` says yes to root for ``/proc``."""
    import tempfile

    target = Path(os.path.abspath(path))
    if os.path.lexists(target) and not target.is_dir():
        raise OptbenchError(f"{key}={path} is an existing file, not a directory; give a directory path")
    ancestor = target
    while not os.path.lexists(ancestor):
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OptbenchError(f"{key}={path} is under {ancestor}, which is a file, not a directory; "
                            "give a path under a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".optbench-check-", dir=ancestor))
    except OSError as err:
        raise OptbenchError(f"{key}={path}: cannot create a directory in {ancestor} "
                            f"({err.strerror or err}); give a writable directory") from None


def register_schema() -> None:
    from hydra.core.config_store import ConfigStore  # Hydra is slow to import: only when composing

    ConfigStore.instance().store(name="optbench_schema", node=RunConfig)


def compose(overrides: list[str] | None = None, *, return_hydra_config: bool = False) -> Any:
    """The config Hydra would build for ``optbench run OVERRIDES`` (no multirun, no launch)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_schema()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(
            "config", overrides=list(overrides or []), return_hydra_config=return_hydra_config
        )
