from dataclasses import dataclass

from hydra.core.config_store import ConfigStore


@dataclass
class ParallelLauncherConf:
    _target_: str = "hydra_plugins.optbench_launcher.parallel_launcher.ParallelLauncher"
    jobs: int | None = None  # at a time; default: one per gpus_per_job GPUs, or one per CPU core
    gpus_per_job: int = 1  # each job sees only its own GPUs (CUDA_VISIBLE_DEVICES)
    threads_per_job: int | None = None  # default: the CPU cores shared evenly between the jobs


ConfigStore.instance().store(group="hydra/launcher", name="parallel", node=ParallelLauncherConf,
                             provider="optbench")
