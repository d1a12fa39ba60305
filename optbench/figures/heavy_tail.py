"""``heavy_tail``: training loss per class-frequency group against steps for gradient descent,
Adam and sign descent on the ``heavy_tail`` task (Kunstner et al. 2024, the linear model of their
Figure 4 / Section 3). The claim checked: GD makes slow progress on the rare classes while Adam and
sign descent do not.

Step sizes are tuned per optimizer, as in the paper: the preset runs one sweep per optimizer over
its own grid of learning rates, and for each optimizer the figure keeps the run with the lowest
training loss (``eval/loss``) averaged over its logged steps (``select: mean``, the area under the
curve, which rewards fast and stable runs) or at its end (``select: final``); runs that diverged or
failed are never kept, and a pick at the edge of its grid is flagged in the verdict.

The verdict compares the rarest group's loss reduction, 1 − L(final) / L(0), of GD with that of
each other optimizer; L(0) = log c for every group, since the model starts at zero, and L(final)
is the mean over the last ``final_window`` (a fraction) of the logged evaluations, because GD at
its best step size (and sign descent) oscillate with period 2 and a single last value would land
on either phase.

Params (the preset's ``params``): ``optimizers`` ({config name: label}, the panels' order; the
first is the baseline, GD), ``metric`` and ``select`` (what picks the learning rate),
``final_window``, ``gd_share_at_most`` (held when GD's rarest-group loss reduction is at most this fraction of each
other optimizer's, and theirs is positive).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optbench.contract import RunStatus
from optbench.errors import OptbenchError
from optbench.figures.curves import Curve, curve, curves, setting
from optbench.figures.preset import FigurePreset
from optbench.figures.style import PALETTE, new_figure
from optbench.figures.verdict import Analysis, Verdict
from optbench.sweeps.collect import RunRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def task_of(record: RunRecord) -> Any:
    """The run's task, built from its resolved config as the run built it: class counts and
    groups, no data."""
    from omegaconf import OmegaConf

    from optbench.runner.build import build_task

    return build_task(OmegaConf.create(record.config["task"]))


def score(record: RunRecord, metric: str, select: str) -> float | None:
    """What picks the learning rate: ``metric`` at the end of the run (``final``) or averaged
    over its logged steps (``mean``, the area under the curve); None for a run that did not
    complete or whose loss is not finite."""
    if record.status != RunStatus.COMPLETED:
        return None
    if select == "final":
        value = record.final.get(metric)
        value = None if value is None else float(value)
    elif select == "mean":
        values = curve(record, metric)[1]
        value = sum(values) / len(values) if values else None
    else:
        raise OptbenchError(f"heavy-tail preset: select={select!r}; accepted: final, mean")
    return value if value is not None and math.isfinite(value) else None


def tuned(records: list[RunRecord], optimizers: list[str], metric: str,
          select: str) -> dict[str, dict[str, Any]]:
    """Per optimizer: every learning rate's score (None: diverged or failed) and the kept run,
    the one with the lowest score."""
    found: dict[str, dict[str, Any]] = {name: {"grid": {}, "run": None} for name in optimizers}
    for record in records:
        if record.optimizer not in found:
            continue
        entry, lr = found[record.optimizer], float(setting(record, "optimizer.lr"))
        value = entry["grid"][lr] = score(record, metric, select)
        if value is not None and (entry["run"] is None or value < entry["value"]):
            entry.update(run=record, lr=lr, value=value)
    missing = [name for name, entry in found.items() if entry["run"] is None]
    if missing:
        raise OptbenchError(
            f"heavy-tail: no completed run of {', '.join(missing)} in the sweep "
            f"(runs found: {sorted({(r.optimizer, r.status) for r in records}) or 'none'})")
    return found


def _loss_curves(record: RunRecord, count: int) -> dict[str, Curve]:
    metrics = {"all": "eval/loss", **{str(g): f"eval/loss_group_{g}" for g in range(count)}}
    found = curves(record, metrics.values())
    return {group: found[metric] for group, metric in metrics.items()}


@dataclass
class ClassesAnalysis(Analysis):
    """Each optimizer's tuned run: its loss per group, judged; and the classes, for :func:`draw`."""

    labels: dict[str, str]  # config name: label, in the panels' order
    lrs: dict[str, float]  # per optimizer, the kept run's learning rate
    curves: dict[str, dict[str, Curve]]  # per optimizer, per group ("all", "0", "1", ...)
    groups: list[Any]  # the task's frequency groups (heavy_tail.Group), most frequent first
    counts: Any  # training examples per class, most frequent first (an array)
    examples: int  # in all


def analyze(preset: FigurePreset, records: list, settings: dict[str, Any]) -> ClassesAnalysis:
    import pandas as pd

    labels: dict[str, str] = dict(settings["optimizers"])
    optimizers = list(labels)
    picked = tuned(records, optimizers, settings.get("metric", "eval/loss"),
                   settings.get("select", "mean"))
    table = task_of(picked[optimizers[0]]["run"])
    groups = table.group_table()

    rows = []
    curves = {}
    for name in optimizers:
        entry = picked[name]
        curves[name] = _loss_curves(entry["run"], len(groups))
        for group, (steps, values) in curves[name].items():
            info = None if group == "all" else groups[int(group)]
            for step, value in zip(steps, values):
                rows.append({"optimizer": name, "label": labels[name], "lr": entry["lr"],
                             "group": group, "classes": info.label if info else "all classes",
                             "share_of_examples": info.share if info else 1.0,
                             "examples_per_class_max": info.most if info else None,
                             "examples_per_class_min": info.least if info else None,
                             "step": step, "loss": value})
    verdict = judge(picked, curves, groups, labels, settings)
    return ClassesAnalysis(pd.DataFrame(rows), verdict, labels,
                           {name: picked[name]["lr"] for name in optimizers}, curves, groups,
                           table.counts, table.n)


def judge(picked: dict[str, dict[str, Any]], curves: dict[str, Any], groups: list[Any],
          labels: dict[str, str], settings: dict[str, Any]) -> Verdict:
    optimizers = list(labels)
    baseline, others = optimizers[0], optimizers[1:]
    share_max = float(settings["gd_share_at_most"])
    criterion = f"{settings.get('select', 'mean')} {settings.get('metric', 'eval/loss')}"
    window = float(settings.get("final_window", 0.1))
    rare, frequent = str(len(groups) - 1), "0"
    lines, numbers = [], {"gd_share_at_most": share_max, "final_window": window, "groups": len(groups),
                          "rarest_group": groups[-1].label, "most_frequent_group": groups[0].label}
    reduction = {}
    for name in optimizers:
        ends = {}
        for group in (frequent, rare, "all"):
            values = curves[name][group][1]
            last = values[-max(1, round(window * len(values))):]
            final = sum(last) / len(last)
            ends[group] = (values[0], final, final / values[0])
        reduction[name] = 1.0 - ends[rare][2]
        grid = picked[name]["grid"]
        lrs = sorted(grid)
        edge = len(lrs) > 1 and picked[name]["lr"] in (lrs[0], lrs[-1])
        numbers[name] = {
            "lr": picked[name]["lr"], "lr_grid": {f"{lr:g}": grid[lr] for lr in lrs},
            "lr_at_grid_edge": edge,
            "rare_initial": ends[rare][0], "rare_final": ends[rare][1], "rare_ratio": ends[rare][2],
            "frequent_initial": ends[frequent][0], "frequent_final": ends[frequent][1],
            "frequent_ratio": ends[frequent][2], "loss_final": ends["all"][1],
            "rare_reduction": reduction[name],
            "group_last_logged": {g: curves[name][str(g)][1][-1] for g in range(len(groups))},
        }
        lines.append(
            f"{labels[name]} (lr {picked[name]['lr']:.3g}): final/initial loss, rarest group "
            f"({groups[-1].label}) {ends[rare][1]:.3g}/{ends[rare][0]:.3g} = {ends[rare][2]:.2f}, "
            f"most frequent ({groups[0].label}) {ends[frequent][1]:.3g}/{ends[frequent][0]:.3g} = "
            f"{ends[frequent][2]:.2f}; overall {ends['all'][1]:.3g}")
        tried = ", ".join(f"{lr:.3g}: " + (str(RunStatus.DIVERGED) if grid[lr] is None else f"{grid[lr]:.3g}") for lr in lrs)
        lines.append(f"  lr picked by {criterion} over {{{tried}}}"
                     + ("  (best at the grid's edge: widen the grid)" if edge else ""))
    held = True
    shares = {}
    for name in others:
        share = reduction[baseline] / reduction[name] if reduction[name] > 0 else math.inf
        shares[name] = share
        ok = reduction[name] > 0 and share <= share_max
        held &= ok
        lines.append(f"rarest-group loss reduction: {labels[baseline]} {reduction[baseline]:.0%} vs "
                     f"{labels[name]} {reduction[name]:.0%}: ratio {share:.2f} <= {share_max:g}: "
                     f"{'yes' if ok else 'NO'}")
    numbers["gd_share"] = shares
    return Verdict(bool(held), lines, numbers)


def _colours(count: int) -> list[Any]:
    """A sequential, colour-blind-safe ramp (viridis), darkest for the most frequent group."""
    from matplotlib import colormaps

    ramp = colormaps["viridis"]
    return [ramp(0.88 * g / max(count - 1, 1)) for g in range(count)]


def draw(analysis: ClassesAnalysis) -> Figure:
    """Top: the class frequencies, the overall loss per optimizer, the groups' key; bottom: one
    panel per optimizer, its loss per group."""
    import numpy as np
    from matplotlib.lines import Line2D

    labels, lrs, curves, groups = analysis.labels, analysis.lrs, analysis.curves, analysis.groups
    optimizers = list(labels)
    colours = _colours(len(groups))
    ncols = max(3, len(optimizers))
    fig, axes = new_figure(ncols=ncols, nrows=2, width=3.4, height=2.8)
    ax = axes[0]
    rank = np.arange(1, len(analysis.counts) + 1)
    for info, colour in zip(groups, colours):
        members = slice(info.first - 1, info.last)
        ax.scatter(rank[members], analysis.counts[members], s=7, color=colour, linewidths=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("class rank k (most frequent first)")
    ax.set_ylabel("training examples of class k")
    ax.set_title(f"(a) {len(rank):,} classes, {analysis.examples:,} examples")

    ax = axes[1]
    for name, colour in zip(optimizers, PALETTE):
        steps, values = curves[name]["all"]
        ax.plot(steps, values, color=colour, label=f"{labels[name]} (lr {lrs[name]:.3g})")
    ax.set_title("(b) all classes")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (nats)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="center right")

    def per_class(info: Any) -> str:
        return f"{info.most}" if info.most == info.least else f"{info.least}–{info.most}"

    key = axes[2]
    key.axis("off")
    key.legend([Line2D([], [], color=colour, lw=2.2) for colour in colours]
               + [Line2D([], [], color="#999999", lw=0.8, ls=":")],
               [f"{info.label}: {per_class(info)} each, {info.share:.0%}" for info in groups]
               + ["log c: every group's loss at step 0"],
               loc="center left", title="frequency groups: examples per class,\nshare of all examples",
               alignment="left", fontsize=8, title_fontsize=9)
    for ax in axes[3:ncols]:
        ax.axis("off")

    top = math.log(len(rank))
    highest = max((v for name in optimizers for _, values in curves[name].values()
                   for v in values if math.isfinite(v)), default=top)
    panels = axes[ncols:ncols + len(optimizers)]
    for index, (ax, name) in enumerate(zip(panels, optimizers)):
        for g, colour in enumerate(colours):
            steps, values = curves[name][str(g)]
            ax.plot(steps, values, color=colour, lw=1.0)
        ax.axhline(top, color="#999999", lw=0.8, ls=":", zorder=0)
        ax.set_title(f"({chr(ord('c') + index)}) {labels[name]}, lr {lrs[name]:.3g}")
        ax.set_xlabel("step")
        ax.set_ylim(0, min(highest, 1.6 * top) * 1.04)
        if index:
            ax.sharey(panels[0])
            ax.tick_params(labelleft=False)
    panels[0].set_ylabel("training loss per group (nats)")
    for ax in axes[ncols + len(optimizers):]:
        ax.axis("off")
    return fig
