"""One run, from its spec: :func:`execute` builds it, resumes or starts it, trains it, and
records how it ended.

It owns the run directory: a finished run (completed or diverged) is reported, never recomputed;
an unfinished one resumes from its checkpoint; a run dir that holds a different config is
refused, so a finished run's files are never overwritten.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import yaml
from omegaconf import OmegaConf
from rich.markup import escape

from optbench.contract import RunStatus, Sink, Summary
from optbench.errors import OptbenchError
from optbench.loggers.console import ConsoleSink, console, summary_table
from optbench.loggers.jsonl import JsonlSink
from optbench.runner import distributed
from optbench.runner.build import build
from optbench.runner.checkpoint import load_checkpoint
from optbench.runner.env import capture_env
from optbench.runner.identity import semantic
from optbench.runner.loop import Outcome, Trainer
from optbench.runner.plugins import instantiate
from optbench.runner.run_dir import RunDir, slurm_job, write_json
from optbench.runner.seeding import derive_seed, seed_everything
from optbench.runner.spec import RunSpec


def _first_difference(old: Any, new: Any, path: str = "") -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            found = _first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if old == new else f"{path}: {old!r} -> {new!r}"


def _check_run_dir(run_dir: RunDir, config: dict[str, Any]) -> RunStatus | None:
    """The status of the run already in ``run_dir`` (None if empty), after checking that it is
    a run of this same config."""
    if run_dir.config.exists():
        previous = yaml.safe_load(run_dir.config.read_text()) or {}
        difference = _first_difference(semantic(previous), semantic(config))
        if difference:
            raise OptbenchError(
                f"{run_dir.path} holds a run of another config ({difference}); "
                "choose another hydra.run.dir, or delete that directory"
            )
    owner = run_dir.read_summary()
    status = run_dir.status(owner)
    if status == RunStatus.RUNNING:
        raise OptbenchError(
            f"{run_dir.path} is in use by a running process (pid {owner.pid} on "
            f"{owner.host}); wait for it or choose another hydra.run.dir"
        )
    return status


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


def execute(spec: RunSpec) -> Outcome | None:
    """Run (or resume) the run of ``spec``; None when it was already finished."""
    main = distributed.is_main()
    console.quiet = not main  # under torchrun only rank 0 prints and writes the run dir
    cfg, run_dir = spec.config, spec.run_dir
    status = _check_run_dir(run_dir, spec.resolved)
    if status is not None and status.finished:
        console.print(f"{escape(str(run_dir.path))}: already {status}, not recomputed "
                      "(delete it to run again)", soft_wrap=True)
        console.print(summary_table(run_dir.read_summary()))
        return None
    resume = run_dir.checkpoint.exists()
    distributed.barrier()  # every rank has read the run dir before rank 0 writes to it

    summary = Summary(status=RunStatus.RUNNING, run_id=spec.run_id, task=spec.task, optimizer=spec.optimizer,
                      seed=cfg.seed, run_dir=str(run_dir.path), host=socket.gethostname(), pid=os.getpid(),
                      slurm_job=slurm_job(), started=time.time())
    if main:
        run_dir.path.mkdir(parents=True, exist_ok=True)
        run_dir.config.write_text(OmegaConf.to_yaml(cfg, resolve=True))
        run_dir.overrides.write_text(yaml.safe_dump(list(spec.overrides)))
        write_json(run_dir.env, capture_env(spec.device))
        run_dir.write_summary(summary)

    summary.status, summary.pid = RunStatus.FAILED, None
    sinks: list[Sink] = []
    trainer: Trainer | None = None
    try:
        built = build(spec)
        trainer = Trainer(cfg, built, built.task.train_stream(derive_seed(cfg.seed, "data")), spec.device, run_dir)
        if resume:
            trainer.restore(load_checkpoint(run_dir.checkpoint))
            console.print(f"resuming {escape(str(run_dir.path))} from step {trainer.state.step}")
        else:
            seed_everything(derive_seed(cfg.seed, "train"))
        sinks = _sinks(spec, trainer.state.step, resume) if main else []
        outcome = trainer.run(sinks)
        summary.status, summary.reason, summary.final = outcome.status, outcome.reason, outcome.final
        return outcome
    except (KeyboardInterrupt, SystemExit):
        summary.status, summary.reason = RunStatus.INTERRUPTED, "interrupted by the user"
        raise
    except BaseException as err:
        message = str(err) if isinstance(err, OptbenchError) else f"{type(err).__name__}: {err}"
        summary.reason = message.splitlines()[0] if message else type(err).__name__
        raise
    finally:
        if trainer is not None:
            summary.steps, summary.work = trainer.state.step, trainer.state.work
            summary.wall_seconds = trainer.state.wall_seconds
        summary.finished = time.time()
        if main:
            run_dir.write_summary(summary)
        for sink in sinks:
            sink.close(summary)
        if summary.status == RunStatus.DIVERGED:
            console.print(f"[bold yellow]diverged:[/] {escape(summary.reason)}", soft_wrap=True)
