"""optbench's Hydra sweeper plugin: ``hydra/sweeper=trials`` launches a list of jobs read from a
file (``hydra.sweeper.trials_file``, a JSON list of override lists) through whichever launcher is
configured, as ``optbench tune`` runs its trials. Light to import (Hydra imports every plugin at
start-up); the sweeper itself is in ``trials_sweeper``.
"""
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class TrialsSweeperConf:
    _target_: str = "hydra_plugins.optbench_sweeper.trials_sweeper.TrialsSweeper"
    trials_file: str = MISSING  # a JSON list of jobs, each a list of overrides
    max_batch_size: int | None = None  # jobs handed to the launcher at a time; None: all at once


ConfigStore.instance().store(group="hydra/sweeper", name="trials", node=TrialsSweeperConf, provider="optbench")
