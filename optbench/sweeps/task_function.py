"""The task function ``@hydra.main`` runs for each job, single run or sweep: it makes the run's
spec from the composed config and Hydra's runtime, records a sweep job in its sweep dir, executes
the run, and returns the sweep objective.

Sweep jobs run in the run store, whose dirs Hydra resolves through ``${optbench.store_dir:}``
in whichever process launches a job (the driver, a parallel-launcher worker, a SLURM node). The
task function is an object that registers that resolver when it is made, and also when a
launcher unpickles it in a worker, so no import has that side effect.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from rich.markup import escape

from optbench.contract import RunStatus, Summary
from optbench.errors import OptbenchError
from optbench.loggers.console import console
from optbench.runner import distributed
from optbench.runner.execute import execute
from optbench.runner.identity import run_id
from optbench.runner.run_dir import RunDir
from optbench.runner.spec import RunSpec, SweepJob, resolve
from optbench.sweeps.manifest import register_job
from optbench.sweeps.objective import objective_value
from optbench.sweeps.store import register_resolver


def print_error(err: OptbenchError) -> None:
    console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)


def spec_from_hydra(cfg: DictConfig) -> RunSpec:
    """The spec of the job Hydra is running now: ``cfg`` checked, with the names, overrides,
    run dir and sweep of Hydra's runtime."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    choices = hc.runtime.choices
    sweep = SweepJob(Path(hc.sweep.dir), int(hc.job.num)) if hc.mode == RunMode.MULTIRUN else None
    return resolve(cfg, hc.runtime.output_dir, task=choices.get("task"), optimizer=choices.get("optimizer"),
                   overrides=list(hc.overrides.task), name=hc.job.override_dirname or None, sweep=sweep)


class TaskFunction:
    """A user mistake prints one line; a single run then exits with 2. In a sweep nothing a job
    does stops the others: its status and reason are in its run dir, a bug's traceback is
    printed, and the sweeper receives ``objective.penalty`` (an Optuna study goes on)."""

    def __init__(self) -> None:
        register_resolver()

    def __reduce__(self) -> tuple[type, tuple]:
        return TaskFunction, ()  # unpickled in a launcher's worker: __init__ registers the resolver

    def __call__(self, cfg: DictConfig) -> float:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        multirun = hc.mode == RunMode.MULTIRUN
        run_dir, identity = RunDir(hc.runtime.output_dir), run_id(OmegaConf.to_container(cfg, resolve=True))
        if multirun and distributed.is_main():  # under torchrun the ranks share one job
            register_job(Path(hc.sweep.dir), int(hc.job.num), list(hc.overrides.task), run_dir.path, identity)
        try:
            outcome = execute(spec_from_hydra(cfg))
        except OptbenchError as err:
            print_error(err)
            if not multirun:
                sys.exit(2)
            if distributed.is_main() and run_dir.read_summary() is None:
                # refused before it started: say so in its own dir
                run_dir.write_summary(Summary(RunStatus.FAILED, run_id=identity, reason=str(err)))
        except Exception:
            if not multirun:
                raise
            console.print_exception()
        else:
            if outcome is not None and outcome.signal:  # stopped by a signal: so is the sweep
                sys.exit(128 + outcome.signal)
        try:
            return objective_value(cfg.objective, run_dir.read_summary())
        except OptbenchError as err:
            print_error(err)
            return float(cfg.objective.penalty)
