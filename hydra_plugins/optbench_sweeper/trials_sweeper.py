from pathlib import Path
from typing import Any

from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


class TrialsSweeper(Sweeper):
    """Launches the command line's overrides followed by each job's own, in the file's order, in
    batches of ``max_batch_size``. The jobs' return values are not read: how a job went is in its
    run dir (docs/architecture.md §4)."""

    def __init__(self, trials_file: str, max_batch_size: int | None = None) -> None:
        self.trials_file, self.max_batch_size = trials_file, max_batch_size
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from optbench.sweeps.trial_list import job_overrides, read_trials

        assert self.config is not None and self.launcher is not None
        jobs = job_overrides(list(arguments), read_trials(self.trials_file))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        size = self.max_batch_size or max(len(jobs), 1)
        returns = []
        for start in range(0, len(jobs), size):
            returns.append(self.launcher.launch(jobs[start:start + size], initial_job_idx=start))
        return returns
