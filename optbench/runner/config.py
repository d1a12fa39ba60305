"""Where the Hydra config tree lives, its typed schema, and composition for `show` and tests.

The schema types the top-level keys, so Hydra rejects ``train.steps=abc`` at composition.
Plugin groups (task, optimizer, schedule, logger) stay untyped here: their keys are checked
against the plugin's own signature when it is built (see :mod:`optbench.runner.plugins`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from omegaconf import MISSING


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
