"""One job: the Hydra task function behind ``optbench run``.

It owns the run directory: a finished run (completed or diverged) is reported, never recomputed;
an unfinished one resumes from its checkpoint; a run dir that holds a different config is
refused, so a finished run's files are never overwritten.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from omegaconf import DictConfig, OmegaConf
from rich.markup import escape

from optbench.errors import OptbenchError
from optbench.optimizers.build import build_optimizer
from optbench.plugins import instantiate
from optbench.runner import distributed
from optbench.runner.build import build_schedule, check_config
from optbench.runner.checkpoint import load_checkpoint
from optbench.runner.device import param_dtype
from optbench.runner.env import capture_env
from optbench.runner.identity import run_id, semantic
from optbench.runner.loop import Outcome, Trainer
from optbench.runner.run_dir import FINISHED, RunDir, slurm_job, write_json
from optbench.runner.seeding import derive_seed, seed_everything
from optbench.runner.sinks import Sink
from optbench.runner.sinks.console import ConsoleSink, console, summary_table
from optbench.runner.sinks.jsonl import JsonlSink
from optbench.sweeps.manifest import register_job
from optbench.sweeps.objective import objective_value
from optbench.sweeps.store import register_resolver

# Sweep jobs run in the run store; whichever process runs this module's task function resolves
# their dirs, so the resolver is registered wherever the task function is unpickled.
register_resolver()


def _first_difference(old: Any, new: Any, path: str = "") -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            found = _first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if old == new else f"{path}: {old!r} -> {new!r}"


def _check_run_dir(run_dir: RunDir, config: dict[str, Any]) -> str | None:
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
    if status == "running":
        raise OptbenchError(
            f"{run_dir.path} is in use by a running process (pid {owner.get('pid')} on "
            f"{owner.get('host')}); wait for it or choose another hydra.run.dir"
        )
    return status


def _sinks(cfg: DictConfig, config: dict[str, Any], run_dir: RunDir, start_step: int, resume: bool,
           meta: dict[str, Any]) -> list[Sink]:
    """The console, metrics.jsonl and the configured logger; ``config`` is ``cfg`` resolved."""
    sinks: list[Sink] = [
        ConsoleSink(cfg.train.steps, start_step, f"{meta['task']}/{meta['optimizer']}",
                    compact=meta["sweep"] is not None),
        JsonlSink(run_dir.metrics, resume_step=start_step if resume else None),
    ]
    if cfg.logger and cfg.logger.get("_target_"):
        logger_cfg = OmegaConf.to_container(cfg.logger, resolve=True)
        # W&B convention for sweeps: one group per sweep, the optimizer as job type, and tags
        # that filter by task and optimizer; the config's own values win
        tags = [*logger_cfg.get("tags", []), *(t for t in (meta["task"], meta["optimizer"]) if t)]
        logger_cfg.update(group=logger_cfg.get("group") or meta["sweep"],
                          job_type=logger_cfg.get("job_type") or meta["optimizer"],
                          tags=list(dict.fromkeys(tags)))
        sinks.append(instantiate(
            "logger", OmegaConf.create(logger_cfg),
            run_dir=run_dir.path, name=meta["name"], run_config=config,
        ))
    return sinks


def execute(cfg: DictConfig, run_dir: RunDir, meta: dict[str, Any]) -> Outcome | None:
    """Run (or resume) the job of ``cfg`` in ``run_dir``; None when it was already finished."""
    main = distributed.is_main()
    console.quiet = not main  # under torchrun only rank 0 prints and writes the run dir
    checked = check_config(cfg)  # first: it turns a token budget into train.steps
    config = OmegaConf.to_container(cfg, resolve=True)
    status = _check_run_dir(run_dir, config)
    if status in FINISHED:
        console.print(f"{escape(str(run_dir.path))}: already {status}, not recomputed "
                      "(delete it to run again)", soft_wrap=True)
        console.print(summary_table(run_dir.read_summary() or {}))
        return None
    task, device, probe = checked.task, checked.device, checked.probe
    resume = run_dir.checkpoint.exists()
    distributed.barrier()  # every rank has read the run dir before rank 0 writes to it

    started = time.time()
    header = {"task": meta["task"], "optimizer": meta["optimizer"], "seed": cfg.seed,
              "run_id": meta.get("run_id"),
              "run_dir": str(run_dir.path), "host": socket.gethostname(), "pid": os.getpid(),
              "slurm_job": slurm_job()}
    if main:
        run_dir.path.mkdir(parents=True, exist_ok=True)
        run_dir.config.write_text(OmegaConf.to_yaml(cfg, resolve=True))
        run_dir.overrides.write_text(yaml.safe_dump(meta["overrides"]))
        write_json(run_dir.env, capture_env(device))
        write_json(run_dir.summary, {**header, "status": "running", "started": started})

    summary: dict[str, Any] = {**header, "status": "failed"}
    sinks: list[Sink] = []
    trainer: Trainer | None = None
    try:
        dtype = param_dtype(cfg.precision)
        task.prepare(device, dtype)
        torch.manual_seed(derive_seed(cfg.seed, "model"))
        model = task.build_model().to(device=device, dtype=dtype)
        parallel = distributed.parallelize(model, cfg.train.parallel)  # before the optimizer
        optimizer = build_optimizer(cfg.optimizer, model, task.param_roles(model))
        scheduler = build_schedule(cfg, optimizer)
        trainer = Trainer(cfg, task, model, optimizer, scheduler,
                          task.train_stream(derive_seed(cfg.seed, "data")), device, run_dir, probe,
                          parallel)
        if resume:
            trainer.restore(load_checkpoint(run_dir.checkpoint))
            console.print(f"resuming {escape(str(run_dir.path))} from step {trainer.state.step}")
        else:
            seed_everything(derive_seed(cfg.seed, "train"))
        sinks = _sinks(cfg, config, run_dir, trainer.state.step, resume, meta) if main else []
        outcome = trainer.run(sinks)
        summary.update(status=outcome.status, reason=outcome.reason, final=outcome.final)
        return outcome
    except (KeyboardInterrupt, SystemExit):
        summary.update(status="interrupted", reason="interrupted by the user")
        raise
    except BaseException as err:
        message = str(err) if isinstance(err, OptbenchError) else f"{type(err).__name__}: {err}"
        summary.update(reason=message.splitlines()[0] if message else type(err).__name__)
        raise
    finally:
        if trainer is not None:
            summary.update(steps=trainer.state.step, work=trainer.state.work,
                           wall_seconds=trainer.state.wall_seconds)
        summary.pop("pid")
        summary["finished"] = time.time()
        if main:
            write_json(run_dir.summary, summary)
        for sink in sinks:
            sink.close(summary)
        if summary["status"] == "diverged":
            console.print(f"[bold yellow]diverged:[/] {escape(summary['reason'])}", soft_wrap=True)


def _meta(cfg: DictConfig) -> tuple[RunDir, dict[str, Any], bool]:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    choices = hc.runtime.choices
    meta = {
        "task": choices.get("task"),
        "optimizer": choices.get("optimizer"),
        "overrides": list(hc.overrides.task),
        "name": hc.job.override_dirname or f"{choices.get('task')}-{choices.get('optimizer')}",
        # a W&B group per sweep: the sweep dir's last two parts (date/time by default)
        "sweep": "/".join(Path(hc.sweep.dir).parts[-2:]) if multirun else None,
        "run_id": run_id(OmegaConf.to_container(cfg, resolve=True)),
    }
    run_dir = RunDir(hc.runtime.output_dir)
    if multirun and distributed.is_main():  # under torchrun the ranks share one job
        register_job(Path(hc.sweep.dir), int(hc.job.num), meta["overrides"], run_dir.path, meta["run_id"])
    return run_dir, meta, multirun


def _print_error(err: OptbenchError) -> None:
    console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)


def hydra_task(cfg: DictConfig) -> float:
    """The function ``@hydra.main`` runs for each job; it returns the sweep objective
    (``objective.metric``, or ``objective.penalty`` when the run did not complete).

    A user mistake prints one line; a single run then exits with 2. In a multirun nothing a job
    does stops the others: its status and reason are in its run dir, a bug's traceback is
    printed, and the sweeper receives the penalty (an Optuna study goes on).
    """
    run_dir, meta, multirun = _meta(cfg)
    try:
        execute(cfg, run_dir, meta)
    except OptbenchError as err:
        _print_error(err)
        if not multirun:
            sys.exit(2)
        if distributed.is_main() and run_dir.read_summary() is None:
            # refused before it started: say so in its own dir
            write_json(run_dir.summary, {"run_id": meta["run_id"], "status": "failed", "reason": str(err)})
    except Exception:
        if not multirun:
            raise
        console.print_exception()
    try:
        return objective_value(cfg.objective, run_dir.read_summary() or {})
    except OptbenchError as err:
        _print_error(err)
        return float(cfg.objective.penalty)
