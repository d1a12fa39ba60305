"""Local parallel sweeps: N jobs at a time, each in a fresh process pinned to its own GPU(s), or
to its share of the CPU cores when there is no GPU (``hydra/launcher=parallel``).

Written here rather than taken from Hydra's joblib launcher because that one can neither give a
job its own ``CUDA_VISIBLE_DEVICES`` (it must be set before CUDA starts in the process) nor
survive a worker that is killed: loky then fails the whole batch. Here every job is a new
process that sets its devices and threads before CUDA starts; a job that dies is reported and
the others go on; and a job stops when the driver does, with a checkpoint, so a killed sweep
leaves no orphans (its runs resume from their checkpoints when the sweep is re-run).
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from optbench.errors import OptbenchError
from optbench.runner.run_dir import pid_alive
from optbench.runner.signals import ask_to_stop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Slot:
    """What one job gets: its GPUs (none on CPU) and its threads."""

    gpus: tuple[str, ...]
    threads: int

    @property
    def env(self) -> dict[str, str]:
        threads = str(self.threads)
        return {"CUDA_VISIBLE_DEVICES": ",".join(self.gpus), "OMP_NUM_THREADS": threads,
                "MKL_NUM_THREADS": threads}

    def describe(self) -> str:
        where = f"GPU {','.join(self.gpus)}" if self.gpus else "CPU"
        return f"{where}, {self.threads} thread{'s' if self.threads > 1 else ''}"


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def visible_gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def plan_slots(jobs: int | None, gpus_per_job: int, threads_per_job: int | None,
               gpus: list[str] | None = None, cpus: int | None = None) -> list[Slot]:
    """One slot per concurrent job: by default one per ``gpus_per_job`` GPUs, or one per core."""
    gpus = visible_gpus() if gpus is None else gpus
    cpus = _cpu_count() if cpus is None else cpus
    for key, value in (("jobs", jobs), ("gpus_per_job", gpus_per_job), ("threads_per_job", threads_per_job)):
        if value is not None and value < 1:
            raise OptbenchError(f"hydra.launcher.{key}={value}: must be a positive integer")
    if gpus:
        count = jobs or len(gpus) // gpus_per_job
        if count < 1 or count * gpus_per_job > len(gpus):
            raise OptbenchError(
                f"hydra.launcher.jobs={count} × gpus_per_job={gpus_per_job} needs "
                f"{max(count, 1) * gpus_per_job} GPUs; {len(gpus)} visible ({','.join(gpus)})")
        groups = [tuple(gpus[i * gpus_per_job:(i + 1) * gpus_per_job]) for i in range(count)]
    else:
        count = jobs or cpus
        groups = [()] * count
    threads = threads_per_job or max(1, cpus // count)
    return [Slot(group, threads) for group in groups]


# What jobs spend their start-up importing: the runner (torch, Hydra), torch.optim's lazy
# import of dynamo, and scipy's solver for a logreg optimum not yet cached
_PRELOAD = ("optbench.sweeps.task_function", "torch._dynamo", "scipy.optimize")
#: how long a job whose driver has gone may take to stop after its step before it is killed
STOP_GRACE_SECONDS = 30.0


def _stop_with_driver(driver: int) -> None:
    """Stop this job when the sweep driver ends, however it ends (even SIGKILL), as SIGTERM
    would: the run checkpoints after its step and records ``interrupted`` (re-running the sweep
    resumes it); SIGKILL if it has not stopped after the grace period. The driver's pid is
    watched, not the parent's: the parent is the fork server, which may outlive the driver."""
    while pid_alive(driver):
        time.sleep(0.5)
    ask_to_stop(signal.SIGTERM)  # a job signalled already (sweep cancel) is not stopped at once
    time.sleep(STOP_GRACE_SECONDS)
    os.kill(os.getpid(), signal.SIGKILL)


def _child(conn: Connection, slot: Slot, shared: bytes, config: bytes, driver: int) -> None:
    import torch

    os.environ.update(slot.env)  # CUDA reads CUDA_VISIBLE_DEVICES when it starts, not at import
    torch.set_num_threads(slot.threads)
    threading.Thread(target=_stop_with_driver, args=(driver,), daemon=True).start()
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobStatus, run_job, setup_globals

    task_function, hydra_context, singletons = pickle.loads(shared)
    Singleton.set_state(singletons)
    config = pickle.loads(config)
    setup_globals()
    ret = run_job(hydra_context=hydra_context, task_function=task_function, config=config,
                  job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    # the driver rebuilds the JobReturn: its configs hold plugin classes, exceptions may not pickle
    value = ret._return_value
    failed = ret.status == JobStatus.FAILED
    conn.send((failed, f"{type(value).__name__}: {value}" if failed else value))


def _ended_by(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return signal.Signals(-exitcode).name
    return f"exit code {exitcode}"


def run_parallel(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[Any]:
    """Run the jobs, ``len(slots)`` at a time; a ``JobReturn`` per job, in order."""
    import multiprocessing

    import cloudpickle  # the singleton state holds OmegaConf's resolvers: closures
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import open_dict

    slots = plan_slots(launcher.jobs, launcher.gpus_per_job, launcher.threads_per_job)
    log.info(f"Parallel launcher: {len(job_overrides)} jobs, {len(slots)} at a time "
             f"({'; '.join(sorted({s.describe() for s in slots}))} each)")
    # Jobs fork from a server that has imported torch and optbench once: a job starts in
    # milliseconds, yet in a process of its own, with nothing inherited from the driver.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(_PRELOAD))
    # what every job shares, pickled once: the task function, Hydra's context and singletons
    shared = cloudpickle.dumps((launcher.task_function, launcher.hydra_context, Singleton.get_state()))
    pending = deque(enumerate(job_overrides, start=initial_job_idx))
    free, running, results = list(slots), {}, {}
    while pending or running:
        while pending and free:
            idx, overrides = pending.popleft()
            config = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
            with open_dict(config):
                config.hydra.job.id, config.hydra.job.num = f"job_{idx}", idx
            receive, send = context.Pipe(duplex=False)
            slot = free.pop(0)
            process = context.Process(target=_child,
                                      args=(send, slot, shared, cloudpickle.dumps(config), os.getpid()))
            process.start()
            send.close()
            log.info(f"\t#{idx} : {' '.join(overrides)} ({slot.describe()})")
            running[process.sentinel] = (idx, overrides, process, receive, slot, config)
        for sentinel in wait(list(running)):
            idx, overrides, process, receive, slot, config = running.pop(sentinel)
            process.join()
            free.append(slot)
            try:
                failed, value = receive.recv()
            except EOFError:
                # Killed or crashed outside the task function: its run dir says how far it got.
                # The sweeper gets the penalty, as for a failed run, not an error: that would end
                # an Optuna study.
                log.warning(f"job #{idx} ({' '.join(overrides)}) ended by "
                            f"{_ended_by(process.exitcode)}; re-run the sweep to resume it")
                failed, value = False, float(config.objective.penalty)
            results[idx] = JobReturn(
                overrides=list(overrides), cfg=config, status=JobStatus.FAILED if failed else JobStatus.COMPLETED,
                _return_value=RuntimeError(value) if failed else value)
    return [results[idx] for idx in sorted(results)]
