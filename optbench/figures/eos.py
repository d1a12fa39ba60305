"""``eos``: full-batch gradient descent at the edge of stability (Cohen et al. 2021, "Gradient
Descent on Neural Networks Typically Occurs at the Edge of Stability"; docs/references.md §3.1).

Left panel: the sharpness λ_max (top Hessian eigenvalue of the training loss, from the run's
``diagnostics=sharpness`` probes) against steps, one colour per step size η, with the stability
threshold 2/η dashed in the same colour; right panel: the training loss (log scale). The claim
checked: λ_max rises (progressive sharpening) and then hovers at 2/η. For each run, the ratio of
the mean sharpness over the late part of the run (the last ``late`` fraction of its probes, shaded
grey) to the threshold; held if every run completed and every ratio is within ``tolerance`` of 1.

The same figure for another optimizer is another :class:`Edge` (which sharpness, against which
threshold): ``adam_eos`` analyses Adam's preconditioned sharpness against (2+2β₁)/((1−β₁)η) with
:func:`analyze_edge` from here, and draws it with :func:`draw`.

The CSV has one row per run and logged step: ``optimizer``, ``lr``, ``step``, the sharpness metric
(``sharpness/lambda_max`` here), ``sharpness/threshold`` and ``train/loss`` (empty where that step
logged no such value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optbench.contract import LAMBDA_MAX, THRESHOLD, TRAIN_LOSS, RunStatus
from optbench.figures.curves import curves, setting
from optbench.figures.preset import FigurePreset
from optbench.figures.style import PALETTE, new_figure
from optbench.figures.verdict import Analysis, Verdict
from optbench.sweeps.collect import RunRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LOSS = TRAIN_LOSS
WINDOW_COLOUR = "#DDDDDD"


@dataclass(frozen=True)
class Edge:
    """What an edge-of-stability figure compares: a sharpness metric against the threshold."""

    sharpness: str  # the logged metric, e.g. ``sharpness/lambda_max``
    label: str  # its axis label
    symbol: str  # its name in the verdict lines


GD = Edge(LAMBDA_MAX, r"sharpness $\lambda_{\max}$ (top Hessian eigenvalue)", "λ_max")


@dataclass
class Run:
    """One run of the sweep: its step size, status and curves."""

    optimizer: str | None
    lr: float
    status: RunStatus
    reason: str | None = None
    probe_steps: list[int] = field(default_factory=list)  # steps with both sharpness and threshold
    sharpness: list[float] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    loss_steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)

    @property
    def factor(self) -> float:
        """c in the threshold c/η (GD 2, Adam with β₁ = 0.9 38), from the logged threshold."""
        return self.threshold[-1] * self.lr if self.threshold else math.nan

    @property
    def threshold_name(self) -> str:
        return f"{self.factor:.3g}/η"

    @property
    def eta(self) -> str:
        return f"η = {self.lr:.3g}"


def read_runs(edge: Edge, records: list[RunRecord]) -> list[Run]:
    """The sweep's runs by increasing step size, with their sharpness, threshold and loss."""
    runs = []
    for record in records:
        lr = setting(record, "optimizer.lr")
        run = Run(record.optimizer or setting(record, "optimizer._target_"),
                  float(lr) if lr is not None else math.nan, record.status, record.reason)
        if record.path is not None and (record.path / "metrics.jsonl").exists():
            found = curves(record, [edge.sharpness, THRESHOLD, LOSS])
            sharp, limit = dict(zip(*found[edge.sharpness])), dict(zip(*found[THRESHOLD]))
            run.probe_steps = sorted(set(sharp) & set(limit))
            run.sharpness = [sharp[s] for s in run.probe_steps]
            run.threshold = [limit[s] for s in run.probe_steps]
            run.loss_steps, run.loss = found[LOSS]
        runs.append(run)
    return sorted(runs, key=lambda r: r.lr)


def late_window(run: Run, late: float) -> slice:
    """The last ``late`` fraction of the run's probes (at least one)."""
    count = len(run.probe_steps)
    return slice(count - max(1, math.ceil(late * count)), count)


def tidy(edge: Edge, runs: list[Run]) -> Any:
    """One row per run and logged step: what both panels plot."""
    import pandas as pd

    rows = []
    for run in runs:
        by_step: dict[int, dict[str, Any]] = {}
        for step, sharp, limit in zip(run.probe_steps, run.sharpness, run.threshold):
            by_step.setdefault(step, {}).update({edge.sharpness: sharp, THRESHOLD: limit})
        for step, loss in zip(run.loss_steps, run.loss):
            by_step.setdefault(step, {})[LOSS] = loss
        rows += [{"optimizer": run.optimizer, "lr": run.lr, "step": step, **values}
                 for step, values in sorted(by_step.items())]
    return pd.DataFrame(rows, columns=["optimizer", "lr", "step", edge.sharpness, THRESHOLD, LOSS])


@dataclass
class EdgeAnalysis(Analysis):
    """The runs, read and judged, for :func:`draw`."""

    edge: Edge
    runs: list[Run]
    late: float  # the verdict's window: the last ``late`` fraction of each run's probes
    loss_name: str | None  # the task's loss, e.g. "square loss", for the loss axis's label


def analyze(preset: FigurePreset, records: list[RunRecord],
            settings: dict[str, Any]) -> EdgeAnalysis:
    return analyze_edge(GD, records, settings)


def analyze_edge(edge: Edge, records: list[RunRecord], settings: dict[str, Any]) -> EdgeAnalysis:
    """Every run's sharpness and threshold, judged over the late part of its probes."""
    runs = read_runs(edge, records)
    late = float(settings.get("late", 0.3))
    verdict = judge(edge, runs, float(settings.get("tolerance", 0.15)), late)
    loss_name = {"mse": "square loss", "ce": "cross-entropy"}.get(
        setting(records[0], "task.loss") if records else None)
    return EdgeAnalysis(tidy(edge, runs), verdict, edge, runs, late, loss_name)


def judge(edge: Edge, runs: list[Run], tolerance: float, late: float) -> Verdict:
    """Held if there are runs, every one completed, and each one's mean sharpness over its late
    probes is within ``tolerance`` of its threshold."""
    lines: list[str] = []
    held = bool(runs)
    numbers: dict[str, Any] = {"sharpness": edge.sharpness, "tolerance": tolerance, "late": late,
                               "runs": {}}
    if not runs:
        lines.append("no runs found")
    for run in runs:
        key = f"{run.lr:g}"
        if run.status != RunStatus.COMPLETED:
            held = False
            lines.append(f"{run.eta}: {run.status}" + (f": {run.reason}" if run.reason else ""))
        if not run.probe_steps:
            held = False
            lines.append(f"{run.eta}: no {edge.sharpness} logged")
            numbers["runs"][key] = {"lr": run.lr, "status": run.status, "ratio": None}
            continue
        window = late_window(run, late)
        sharp, limit, steps = run.sharpness[window], run.threshold[window], run.probe_steps[window]
        ratio = (sum(sharp) / len(sharp)) / (sum(limit) / len(limit))
        each = [v / t for v, t in zip(sharp, limit)]
        near = abs(ratio - 1) <= tolerance
        held &= near
        reached = next((s for s, v, t in zip(run.probe_steps, run.sharpness, run.threshold)
                        if v >= (1 - tolerance) * t), None)
        numbers["runs"][key] = {
            "lr": run.lr, "status": run.status, "threshold": limit[-1], "rule": run.threshold_name,
            "ratio": ratio, "ratio_min": min(each), "ratio_max": max(each),
            "window_steps": [steps[0], steps[-1]], "probes": len(sharp),
            "first_step": run.probe_steps[0], "first_sharpness": run.sharpness[0],
            "reached_step": reached,
            "first_loss": run.loss[0] if run.loss else None,
            "final_loss": run.loss[-1] if run.loss else None,
        }
        rule = run.threshold_name
        lines.append(
            f"{run.eta}: {edge.symbol} / ({rule}) = {ratio:.3f} on average over steps "
            f"{steps[0]}–{steps[-1]} ({len(sharp)} probes; {rule} = {limit[-1]:.4g}, "
            f"{edge.symbol} {min(sharp):.4g}–{max(sharp):.4g}); "
            f"within {tolerance:.0%} of 1: {'yes' if near else 'NO'}")
        rise = (f"reached {1 - tolerance:.0%} of it at step {reached}" if reached is not None
                else f"never reached {1 - tolerance:.0%} of it")
        loss = f"; train loss {run.loss[0]:.3g} → {run.loss[-1]:.3g}" if run.loss else ""
        lines.append(f"  {edge.symbol} {run.sharpness[0]:.4g} at step {run.probe_steps[0]} "
                     f"({run.sharpness[0] / run.threshold[0]:.2f} × {rule}), {rise}{loss}")
    return Verdict(held, lines, numbers)


def draw(analysis: EdgeAnalysis) -> Figure:
    """Sharpness against its threshold (left) and the training loss (right), one colour per η."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    edge, runs, late, loss_name = analysis.edge, analysis.runs, analysis.late, analysis.loss_name
    fig, (sharp_ax, loss_ax) = new_figure(ncols=2, width=4.4, height=3.3)
    drawn = [run for run in runs if run.probe_steps]
    handles = []
    for run, colour in zip(runs, PALETTE):
        label = f"$\\eta = {run.lr:.3g}$" + ("" if run.probe_steps else f" ({run.status})")
        sharp_ax.plot(run.probe_steps, run.sharpness, color=colour, marker="o", markersize=2.5)
        sharp_ax.plot(run.probe_steps, run.threshold, color=colour, linestyle="--", linewidth=1.2)
        loss_ax.plot(run.loss_steps, run.loss, color=colour, linewidth=1.2)
        handles.append(Line2D([], [], color=colour, marker="o", markersize=2.5, label=label))
    if drawn:
        factors = sorted({f"{run.factor:.3g}" for run in drawn})
        rule = f"{factors[0]}/\\eta" if len(factors) == 1 else "c/\\eta"
        handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1.2,
                              label=f"stability threshold ${rule}$ (same colour)"))
        start = min(run.probe_steps[late_window(run, late)][0] for run in drawn)
        end = max(run.probe_steps[-1] for run in drawn)
        for ax in (sharp_ax, loss_ax):
            ax.axvspan(start, end, color=WINDOW_COLOUR, alpha=0.6, lw=0, zorder=0)
        handles.append(Patch(color=WINDOW_COLOUR, alpha=0.6, lw=0,
                             label=f"verdict window (last {late:.0%} of probes)"))
        highest = max(max(run.threshold) for run in drawn)
        peak = max(max(run.sharpness) for run in drawn)
        sharp_ax.set_ylim(0, 1.08 * min(max(peak, highest), 1.8 * highest))
    sharp_ax.set(xlabel="step", ylabel=edge.label)
    sharp_ax.set_title("sharpness (solid) and its threshold (dashed)")
    loss_ax.set(xlabel="step", ylabel="train loss" + (f" ({loss_name})" if loss_name else ""),
                yscale="log")
    loss_ax.set_title("training loss (full batch)")
    for ax in (sharp_ax, loss_ax):
        ax.set_xlim(left=0)
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig
