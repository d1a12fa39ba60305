"""The run store: sweep jobs run in ``<store>/<run id>``, one dir per run identity, shared by sweeps.

``hydra.sweep.subdir`` is ``${optbench.store_dir:}``, which resolves to that absolute path.
Every Hydra launcher joins the subdir to the sweep dir with ``os.path.join``, where an absolute
path wins, so a job's output dir is its store dir while the sweep dir keeps the sweep's own
files (manifest, job list, Hydra's multirun.yaml). The resolver runs in whichever process
launches the job (the driver, a parallel-launcher worker, a SLURM node): the task function
registers it when it is made or unpickled (:mod:`optbench.sweeps.task_function`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from optbench.runner.identity import run_id

RESOLVER = "optbench.store_dir"


def job_config(root: DictConfig) -> dict[str, Any]:
    """The resolved config a job's task function receives: the root without Hydra's node."""
    return OmegaConf.to_container(
        OmegaConf.masked_copy(root, [key for key in root if key != "hydra"]), resolve=True)


def _store_dir(*, _root_: DictConfig) -> str:
    base = Path(str(_root_.store))
    if not base.is_absolute():  # relative to where the sweep was started, not to a worker's cwd
        base = Path(str(_root_.hydra.runtime.cwd)) / base
    return str(base / run_id(job_config(_root_)))


def register_resolver() -> None:
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, _store_dir)
