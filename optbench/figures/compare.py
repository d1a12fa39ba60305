"""The figures of ``optbench compare``, drawn from a :class:`optbench.sweeps.compare.Comparison`
(every number is computed there): each task's mean curves with the baseline's fitted power law,
the performance profiles, and the learning-rate sensitivity."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from optbench.figures.style import PALETTE, new_figure, save
from optbench.sweeps.compare import Comparison

if TYPE_CHECKING:
    from matplotlib.figure import Figure

AXIS_LABEL = {"step": "steps", "tokens": "tokens", "examples": "examples"}
PER_ROW = 3  # panels per row of the per-task figures


def _panels(count: int) -> tuple[Figure, list]:
    """A figure with one panel per task, ``PER_ROW`` to a row; spare panels hidden."""
    fig, axes = new_figure(ncols=min(count, PER_ROW), nrows=math.ceil(count / PER_ROW))
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def _colours(comparison: Comparison) -> dict[str, str]:
    """One colour per optimizer, the same in every figure: the baseline's first."""
    names = list(comparison.profile.ratios)
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def draw_curves(comparison: Comparison) -> Figure:
    colour = _colours(comparison)
    fig, axes = _panels(len(comparison.tasks))
    for ax, task in zip(axes, comparison.tasks):
        for name, (xs, ys) in task.curves.items():
            ax.plot(xs, ys, color=colour[name], label=name + (" (baseline)" if name == task.baseline else ""))
        fit = task.fit
        if fit is not None:
            grid = [fit.d_min * (fit.d_max / fit.d_min) ** (i / 99) for i in range(100)]
            ax.plot(grid, [fit(d) for d in grid], color=colour[task.baseline], linestyle="--", linewidth=1,
                    label=f"fit {fit.a:.3g}·D^-{fit.b:.3g} + {fit.c:.3g} (R² {fit.r2:.3f})")
        if task.target is not None:
            ax.axhline(task.target, color="0.4", linestyle=":", linewidth=1, label="target")
        ax.set_xlabel(AXIS_LABEL.get(task.axis, task.axis))
        ax.set_ylabel(task.metric)
        ax.set_title(task.name)
        ax.legend()
    return fig


def draw_profiles(comparison: Comparison) -> Figure:
    profile = comparison.profile
    colour = _colours(comparison)
    fig, (ax,) = new_figure()
    for name, rho in profile.rho.items():
        ax.step(profile.grid, rho, where="post", color=colour[name],
                label=f"{name} (score {profile.scores[name]:.3f})")
    ax.set_xlim(1, profile.grid[-1])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"τ: time to target ({profile.clock}) within τ × the fastest")
    ax.set_ylabel(f"fraction of tasks (of {len(profile.tasks)})")
    ax.set_title("performance profiles")
    ax.legend()
    return fig


def draw_sensitivity(comparison: Comparison) -> Figure:
    colour = _colours(comparison)
    fig, axes = _panels(len(comparison.tasks))
    for ax, task in zip(axes, comparison.tasks):
        for name, points in task.trials.items():
            done = sorted((p.lr, p.value) for p in points if p.lr is not None and not p.failed
                          and math.isfinite(p.value))
            if done:
                ax.plot(*zip(*done), marker="o", color=colour[name], label=name)
            failed = [p.lr for p in points if p.lr is not None and p.failed]
            if failed:  # drawn on the top edge: a failed trial has no value
                ax.plot(failed, [1.0] * len(failed), "x", color=colour[name], markersize=8, clip_on=False,
                        transform=ax.get_xaxis_transform(), label=f"{name}: failed")
        ax.set_xscale("log")
        ax.set_xlabel("optimizer.lr")
        ax.set_ylabel(f"final {task.metric} (mean over seeds)")
        ax.set_title(task.name)
        ax.legend()
    return fig


FIGURES = {"curves": draw_curves, "profiles": draw_profiles, "sensitivity": draw_sensitivity}


def draw_all(comparison: Comparison, out_dir: Path) -> dict[str, list[Path]]:
    """Each figure as PNG and PDF in ``out_dir``, by name."""
    return {name: save(draw(comparison), out_dir, name) for name, draw in FIGURES.items()}
