"""Curvature of a saved checkpoint, after the fact (`optbench sharpness RUN_DIR`)."""

from __future__ import annotations

from omegaconf import OmegaConf

from optbench.diagnostics.probe import SharpnessProbe
from optbench.errors import OptbenchError
from optbench.runner.build import build
from optbench.runner.checkpoint import load_checkpoint
from optbench.runner.run_dir import RunDir
from optbench.runner.spec import resolve

# the run's probe settings that the caller's k and trace replace, or that only concern training
_NOT_KEPT = ("_target_", "every", "k", "trace", "method")


def checkpoint_spectrum(run_dir: RunDir, step: int | None, k: int, trace: bool) -> tuple[int, dict[str, float]]:
    """The step of the checkpoint read and the probe's metrics at its weights.

    The run is built as it was trained, with a probe that uses the run's own diagnostics settings
    where it had them (probe set, model mode, tolerance) and ``k`` and ``trace`` from the caller;
    its optimizer state gives the stability threshold and Adam's preconditioned sharpness.
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
    settings = {key: value for key, value in (cfg.get("diagnostics") or {}).items() if key not in _NOT_KEPT}
    cfg.diagnostics = {"_target_": f"{SharpnessProbe.__module__}.{SharpnessProbe.__qualname__}",
                       **settings, "k": k, "trace": trace}
    built = build(resolve(cfg))  # nothing is written: the run dir may be read-only
    checkpoint = load_checkpoint(path)
    built.model.load_state_dict(checkpoint["model"])
    built.optimizer.load_state_dict(checkpoint["optimizer"])
    saved_step = checkpoint["loop"]["step"]
    return saved_step, built.probe(built.task, built.model, built.optimizer, saved_step)
