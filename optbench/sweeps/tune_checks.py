"""What a tune checks before its first trial: each optimizer's config on each task composes and
checks as a run's would, its search space names keys that config has (their values there are
the defaults a protocol starts from), and the metric it selects on is one the task's runs log.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from optbench.contract import TRAIN_LOSS
from optbench.errors import OptbenchError
from optbench.sweeps.protocols import Trial
from optbench.sweeps.search_space import SearchSpace


def composed(overrides: list[str]) -> DictConfig:
    """One run's config (with its ``hydra`` node), checked as ``optbench run`` checks it."""
    from optbench.runner.spec import check
    from optbench.sweeps.launch import compose_checked, hydra_config

    cfg = compose_checked(overrides)
    with hydra_config(cfg):
        check(cfg)
    return cfg


def defaults_of(cfg: DictConfig, space: SearchSpace, where: str) -> Trial:
    """The value in ``cfg`` of every key of ``space``: the config's defaults, as a trial."""
    missing = object()
    values = {}
    for key in space.keys:
        value = OmegaConf.select(cfg, key, default=missing)
        if value is missing:
            raise OptbenchError(f"{space.source}: {key} is not a key of the config of {where}; "
                                f"its optimizer keys: {', '.join(str(k) for k in cfg.optimizer)}")
        values[key] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    return values


def logged_metrics(cfg: DictConfig) -> list[str]:
    """The metrics a run of ``cfg`` logs that a tune can select on: the task's evaluation of the
    freshly built model (and of its average, ``eval_ema/*``, with ``train.ema``) and train/loss.
    Costs one model built and its data prepared, on the driver's device."""
    import torch

    from optbench.runner.averaging import as_ema
    from optbench.runner.build import build
    from optbench.runner.spec import resolve

    job = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    if "eval_tokens" in job.task and "seq_len" in job.task:  # LM tasks: the names need one sequence,
        job.task.eval_tokens = job.task.seq_len  # not the millions of tokens a paper-scale run evaluates
    built = build(resolve(job))
    built.model.eval()
    with torch.no_grad():
        evaluated = built.task.evaluate(built.model)
    names = [TRAIN_LOSS, *evaluated]
    if cfg.train.get("ema") is not None:
        names += list(as_ema(evaluated))
    return names


def check_metric(cfg: DictConfig, metric: str, task: str) -> None:
    logged = logged_metrics(cfg)
    if metric not in logged:
        raise OptbenchError(f"--metric {metric} is not a metric the runs of task {task} log; "
                            f"they log: {', '.join(logged)}")


def target_of(cfg: DictConfig) -> Any:
    """The value of the run config's own target (``target.value``), if it sets one."""
    return OmegaConf.select(cfg, "target.value", default=None)
