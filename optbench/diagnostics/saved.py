"""Curvature of a saved checkpoint, after the fact (`optbench sharpness RUN_DIR`)."""

from __future__ import annotations

from omegaconf import OmegaConf

from optbench.config import Precision
from optbench.diagnostics.probe import SharpnessProbe
from optbench.errors import OptbenchError
from optbench.optimizers.build import build_optimizer
from optbench.runner.build import build_task
from optbench.runner.checkpoint import load_checkpoint
from optbench.runner.device import param_dtype, resolve_device
from optbench.runner.run_dir import RunDir
from optbench.runner.seeding import derive_seed


def checkpoint_spectrum(run_dir: RunDir, step: int | None, k: int, trace: bool) -> tuple[int, dict[str, float]]:
    """The step of the checkpoint read and the probe's metrics at its weights.

    The probe uses the run's own diagnostics settings where it had them (probe set, model mode,
    tolerance) with ``k`` and ``trace`` from the caller, and its optimizer state for the stability
    threshold and Adam's preconditioned sharpness.
    """
    if not run_dir.config.exists():
        raise OptbenchError(f"{run_dir.path} is not a run dir (no config.yaml)")
    path = run_dir.checkpoint if step is None else run_dir.kept_checkpoint(step)
    if not path.exists():
        kept = sorted(int(p.stem.removeprefix("step_")) for p in path.parent.glob("step_*.pt"))
        raise OptbenchError(
            f"{path} does not exist; kept steps: {kept or 'none'} "
            "(runs keep every checkpoint with train.keep_checkpoints=true)")
    cfg = OmegaConf.load(run_dir.config)
    device, dtype = resolve_device(cfg.device), param_dtype(Precision(cfg.precision))
    task = build_task(cfg)
    task.prepare(device, dtype)
    model = task.build_model().to(device=device, dtype=dtype)
    optimizer = build_optimizer(cfg.optimizer, model, task.param_roles(model))
    checkpoint = load_checkpoint(path)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    settings = {key: value for key, value in (cfg.get("diagnostics") or {}).items()
                if not key.startswith("_") and key not in ("every", "k", "trace", "method")}
    probe = SharpnessProbe(**settings, k=k, trace=trace, seed=derive_seed(cfg.seed, "probe"))
    saved_step = checkpoint["loop"]["step"]
    return saved_step, probe(task, model, optimizer, saved_step)
