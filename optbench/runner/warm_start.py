"""Warm start (``train.warm_start``): a run that begins where another run's checkpoint left off.

The run loads the source's weights, optimizer state, EMA of the weights (when it has one), data
position, RNG states and loop counters: its step, work and training seconds continue, so its
metrics sit on the same step, work and time axes as the source's curve. Its schedule is fresh:
it spans the run's own remaining steps (``train.steps`` − the source's step), from its step 0.
One long constant (or WSD) run thus yields decayed results at several budgets, each branch a
pure cooldown: ``schedule=wsd schedule.warmup_fraction=0 schedule.decay_fraction=1``.

The source is ``checkpoints/step_N.pt`` of its run dir for ``train.warm_start.step=N`` (kept with
``train.keep_checkpoints=true``; its latest ``checkpoint.pt`` serves too when it is at step N),
or its latest checkpoint when the step is null. It must be a run of the same task, optimizer
and seed, which its state belongs to (its checkpoint records its config). The source is read
only when the run has no checkpoint of its own: once it has, it resumes from its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from optbench.errors import OptbenchError, first_line
from optbench.runner.checkpoint import load_checkpoint, load_latest
from optbench.runner.identity import first_difference
from optbench.runner.loop import LoopState, Trainer
from optbench.runner.run_dir import RunDir

#: what the source's state belongs to: the model and data (task), the optimizer state, the data order
_SAME = ("task", "optimizer", "seed")


def _source_checkpoint(cfg: DictConfig, warn: Callable[[str], None]) -> dict[str, Any]:
    """The checkpoint ``train.warm_start`` names, checked against ``cfg``; each damaged
    checkpoint passed over is reported to ``warn``."""
    warm = cfg.train.warm_start
    run_dir = RunDir(warm.run)
    where = f"train.warm_start.run={warm.run}"
    if not run_dir.path.is_dir():
        raise OptbenchError(f"{where} is not a directory; give the run dir of a run with a checkpoint")
    checkpoint = _load(run_dir, warm.step, where, warn)
    step = checkpoint["loop"]["step"]
    if step >= cfg.train.steps:
        raise OptbenchError(f"train.steps={cfg.train.steps} must exceed the step of the warm start's "
                            f"checkpoint ({step}, {where}): the run trains on from there")
    _check_same_run(checkpoint.get("identity"), cfg, where)
    return checkpoint


def _load(run_dir: RunDir, step: int | None, where: str, warn: Callable[[str], None]) -> dict[str, Any]:
    kept = run_dir.kept_checkpoint(step) if step is not None else None
    if kept is not None and kept.exists():
        return load_checkpoint(kept)
    latest = load_latest(run_dir, warn)
    if latest is not None and step in (None, latest["loop"]["step"]):
        return latest
    if step is None:
        raise OptbenchError(f"{where} holds no checkpoint; give the run dir of a run that checkpointed")
    steps = sorted(int(p.stem.removeprefix("step_")) for p in kept.parent.glob("step_*.pt"))
    known = f"kept steps: {', '.join(map(str, steps))}" if steps else "no kept steps"
    raise OptbenchError(f"train.warm_start.step={step}: {where} has no checkpoint at step {step} ({known}; "
                        "a run keeps them with train.keep_checkpoints=true); or set train.warm_start.step=null "
                        "for its latest")


def _check_same_run(identity: dict[str, Any] | None, cfg: DictConfig, where: str) -> None:
    source = (identity or {}).get("config")
    if not source:  # a checkpoint that records no config: loading it checks the shapes alone
        return
    ours = OmegaConf.to_container(cfg, resolve=True)
    for key in _SAME:
        difference = first_difference(source.get(key), ours.get(key), key)
        if difference:
            raise OptbenchError(f"{where} holds a checkpoint of another {key} ({difference}); a warm start "
                                f"continues its model, optimizer state and data: use its {', '.join(_SAME)}")


def warm_start(trainer: Trainer, cfg: DictConfig, warn: Callable[[str], None]) -> int:
    """Start ``trainer`` from the checkpoint ``train.warm_start`` names; return its step."""
    checkpoint = _source_checkpoint(cfg, warn)
    try:
        trainer.start_from(checkpoint, _branch_state(checkpoint))
    except (RuntimeError, ValueError, KeyError) as err:  # what loading a state of other shapes raises
        raise OptbenchError(f"train.warm_start.run={cfg.train.warm_start.run} holds a checkpoint this "
                            f"run's model and optimizer cannot load ({first_line(err)}); warm-start from a run of "
                            f"the same {', '.join(_SAME)}") from err
    return trainer.state.start_step


def _branch_state(checkpoint: dict[str, Any]) -> LoopState:
    """The loop state a warm-started run begins with: the source's step, work, training seconds,
    first loss and half-accumulated log interval; its own wall clock, final metrics and target."""
    loop = checkpoint["loop"]
    return LoopState(**{**loop, "start_step": loop["step"], "wall_seconds": 0.0, "latest": {},
                        "target_line": None, "target_crossing": None})
