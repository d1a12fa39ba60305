"""One run, from its spec: :func:`execute` builds it, resumes or starts it, trains it, and
records how it ended.

It owns the run directory: a finished run (completed or diverged) is reported, never recomputed;
an unfinished one resumes from its checkpoint, and one with none starts afresh, or from another
run's checkpoint (``train.warm_start``); a run dir that holds a different config is refused, so a
finished run's files are never overwritten.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import yaml
from filelock import FileLock, Timeout
from omegaconf import OmegaConf
from rich.markup import escape

from optbench.contract import RunStatus, Sink, Summary
from optbench.errors import OptbenchError
from optbench.loggers.console import ConsoleSink, console, summary_table
from optbench.loggers.jsonl import JsonlSink
from optbench.runner import distributed
from optbench.runner.build import build
from optbench.runner.checkpoint import load_latest
from optbench.runner.device import full_fp32
from optbench.runner.env import capture_env
from optbench.runner.identity import first_difference, semantic
from optbench.runner.loop import Outcome, Trainer
from optbench.runner.plugins import instantiate
from optbench.runner.run_dir import RunDir, slurm_job, write_json
from optbench.runner.seeding import derive_seed, seed_everything
from optbench.runner.signals import StopRequest, graceful_stop
from optbench.runner.spec import RunSpec
from optbench.runner.warm_start import warm_start


def _another_config(run_dir: RunDir, difference: str) -> OptbenchError:
    return OptbenchError(f"{run_dir.path} holds a run of another config ({difference}); "
                         "choose another hydra.run.dir, or delete that directory")


def _identity(spec: RunSpec) -> dict[str, Any]:
    """What a checkpoint records of whose state it is: the run id and the semantic config."""
    return {"run_id": spec.run_id, "config": semantic(spec.resolved)}


def _check_identity(run_dir: RunDir, recorded: dict[str, Any] | None, spec: RunSpec) -> None:
    """A run's identity is recorded in its summary (the run id) and its checkpoints (the id and
    the semantic config) too, so a run dir whose config.yaml is gone is still never resumed
    under another config."""
    if not recorded or recorded.get("run_id") in (None, spec.run_id):
        return
    known = recorded.get("config")
    difference = first_difference(known, semantic(spec.resolved)) if known else None
    raise _another_config(run_dir, difference or f"run id {recorded['run_id']}, this config's is {spec.run_id}")


def _check_run_dir(run_dir: RunDir, spec: RunSpec) -> tuple[RunStatus | None, Summary | None]:
    """The status (None if empty) and summary of the run already in ``run_dir``, after checking
    that it is a run of this same config."""
    if run_dir.config.exists():
        previous = yaml.safe_load(run_dir.config.read_text()) or {}
        difference = first_difference(semantic(previous), semantic(spec.resolved))
        if difference:
            raise _another_config(run_dir, difference)
    summary = run_dir.read_summary()
    _check_identity(run_dir, {"run_id": summary.run_id} if summary else None, spec)
    status = run_dir.status(summary)
    # we hold the run dir's lock: a summary that still says running was left by a process that died
    return (RunStatus.INTERRUPTED if status == RunStatus.RUNNING else status), summary


def _warn_checkpoint(line: str) -> None:
    console.print(f"[bold yellow]checkpoint:[/] {escape(line)}", soft_wrap=True)


def _sinks(spec: RunSpec, start_step: int, resume: bool) -> list[Sink]:
    """The console, metrics.jsonl and the configured logger."""
    cfg = spec.config
    group = spec.sweep.group if spec.sweep else None
    sinks: list[Sink] = [
        ConsoleSink(cfg.train.steps, start_step, f"{spec.task}/{spec.optimizer}", compact=group is not None),
        JsonlSink(spec.run_dir.metrics, resume_step=start_step if resume else None),
    ]
    if cfg.logger and cfg.logger.get("_target_"):
        logger_cfg = OmegaConf.to_container(cfg.logger, resolve=True)
        # W&B convention for sweeps: one group per sweep, the optimizer as job type, and tags
        # that filter by task and optimizer; the config's own values win
        tags = [*logger_cfg.get("tags", []), *(t for t in (spec.task, spec.optimizer) if t)]
        logger_cfg.update(group=logger_cfg.get("group") or group,
                          job_type=logger_cfg.get("job_type") or spec.optimizer,
                          tags=list(dict.fromkeys(tags)))
        sinks.append(instantiate(
            "logger", OmegaConf.create(logger_cfg),
            run_dir=spec.run_dir.path, name=spec.name, run_config=spec.resolved,
        ))
    return sinks


@contextlib.contextmanager
def _locked(run_dir: RunDir) -> Iterator[None]:
    """Hold the run dir's lock for the life of the run: an flock on ``.lock``, which the kernel
    releases when the process dies, however it dies. Rank 0 alone takes it (under torchrun the
    other ranks write nothing). Enforced on local filesystems and across NFSv4 clients (Linux
    emulates flock with POSIX locks there); a filesystem mounted without working locks cannot
    keep two hosts out of one run dir."""
    if not distributed.is_main():
        yield
        return
    run_dir.path.mkdir(parents=True, exist_ok=True)
    lock = FileLock(run_dir.lock, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        owner = run_dir.read_summary()
        holder = f" (pid {owner.pid} on {owner.host})" if owner and owner.pid else ""
        raise OptbenchError(f"{run_dir.path} is in use by a running process{holder}; "
                            "wait for it or choose another hydra.run.dir") from None
    try:
        yield
    finally:
        lock.release()


def execute(spec: RunSpec) -> Outcome | None:
    """Run (or resume) the run of ``spec``; None when it was already finished. The run dir is
    locked while it runs, and a signal stops it after the step in progress, with a checkpoint
    (:mod:`optbench.runner.signals`)."""
    with _locked(spec.run_dir), graceful_stop() as stop:
        return _run(spec, stop)


def _run(spec: RunSpec, stop: StopRequest) -> Outcome | None:
    main = distributed.is_main()
    console.quiet = not main  # under torchrun only rank 0 prints and writes the run dir
    cfg, run_dir = spec.config, spec.run_dir
    status, previous = _check_run_dir(run_dir, spec)
    if status is not None and status.finished:
        console.print(f"{escape(str(run_dir.path))}: already {status}, not recomputed "
                      "(delete it to run again)", soft_wrap=True)
        console.print(summary_table(previous))
        return None
    checkpoint = load_latest(run_dir, _warn_checkpoint)
    resume = checkpoint is not None
    if resume:
        _check_identity(run_dir, checkpoint.get("identity"), spec)
    distributed.barrier()  # every rank has read the run dir before rank 0 writes to it

    summary = Summary(status=RunStatus.RUNNING, run_id=spec.run_id, task=spec.task, optimizer=spec.optimizer,
                      seed=cfg.seed, run_dir=str(run_dir.path), host=socket.gethostname(), pid=os.getpid(),
                      slurm_job=slurm_job(), started=time.time())
    full_fp32()  # on every rank, before anything computes and env.json records it
    if main:
        run_dir.path.mkdir(parents=True, exist_ok=True)
        run_dir.config.write_text(OmegaConf.to_yaml(cfg, resolve=True))
        run_dir.overrides.write_text(yaml.safe_dump(list(spec.overrides)))
        write_json(run_dir.env, capture_env(spec.device, cfg.train.compile))
        run_dir.write_summary(summary)

    summary.status, summary.pid = RunStatus.FAILED, None
    sinks: list[Sink] = []
    trainer: Trainer | None = None
    try:
        built = build(spec)
        trainer = Trainer(cfg, built, built.task.train_stream(derive_seed(cfg.seed, "data")), spec.device, run_dir,
                          _identity(spec))
        if resume:
            trainer.restore(checkpoint)
            console.print(f"resuming {escape(str(run_dir.path))} from step {trainer.state.step}")
        elif cfg.train.warm_start.run is not None:
            step = warm_start(trainer, cfg, _warn_checkpoint)
            console.print(f"warm start from {escape(str(cfg.train.warm_start.run))} at step {step}")
        else:
            seed_everything(derive_seed(cfg.seed, "train"))
        if not resume:
            trainer.first_evaluation()  # before the sinks: a target it never logs is one line
        sinks = _sinks(spec, trainer.state.step, resume) if main else []
        outcome = trainer.run(sinks, stop)
        summary.status, summary.reason, summary.final = outcome.status, outcome.reason, outcome.final
        return outcome
    except (KeyboardInterrupt, SystemExit) as err:
        summary.status = RunStatus.INTERRUPTED
        summary.reason = str(err) if isinstance(err, KeyboardInterrupt) and str(err) else "interrupted by the user"
        raise
    except BaseException as err:
        message = str(err) if isinstance(err, OptbenchError) else f"{type(err).__name__}: {err}"
        summary.reason = message.splitlines()[0] if message else type(err).__name__
        raise
    finally:
        if trainer is not None:
            summary.steps, summary.work = trainer.state.step, trainer.state.work
            summary.wall_seconds = trainer.state.wall_seconds
            summary.target = trainer.target_record()
            if trainer.state.start_step:
                summary.warm_start = {"run": cfg.train.warm_start.run, "step": trainer.state.start_step}
        summary.finished = time.time()
        if main:
            run_dir.write_summary(summary)
        for sink in sinks:
            sink.close(summary)
        if summary.status in (RunStatus.DIVERGED, RunStatus.INTERRUPTED):
            console.print(f"[bold yellow]{summary.status}:[/] {escape(summary.reason)}", soft_wrap=True)
