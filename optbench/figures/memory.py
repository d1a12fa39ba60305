"""``memory``: weights, gradients and optimizer states per optimizer and model size, stacked, from
the same meta-device count as ``optbench memory``; the GaLore paper's published weights + states
are marked beside our bars. The claim checked: at every size, SWAN's optimizer states are
smaller than GaLore's, and GaLore's smaller than AdamW's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optbench.figures.preset import FigurePreset
from optbench.figures.style import PALETTE, new_figure
from optbench.figures.verdict import Analysis, Verdict

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# states on top of the weights, so the published weights + states marker is level with their top
PARTS = ("weights", "optimizer_states", "gradients")


def rows(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per size and optimizer: bytes of each part, as `optbench memory` counts them."""
    from optbench.sweeps.launch import compose_checked
    from optbench.tools.memory import estimate, published

    found = []
    for size in settings["sizes"]:
        for optimizer in settings["optimizers"]:
            overrides = [f"task={size}", f"optimizer={optimizer}", f"precision={settings['precision']}",
                         *settings.get("overrides", {}).get(optimizer, {}).get(size, [])]
            counted = estimate(compose_checked(overrides))
            paper = published(size, optimizer)
            found.append({"task": size, "optimizer": optimizer, "overrides": " ".join(overrides),
                          "parameters": counted.parameters,
                          **{part: getattr(counted, part) for part in PARTS},
                          "published_weights_and_states_gb": paper.gigabytes if paper else None})
    return found


@dataclass
class MemoryAnalysis(Analysis):
    """The counts (``data``), judged, and the panels' order for :func:`draw`."""

    sizes: list[str]  # one panel each
    optimizers: list[str]  # one bar each
    precision: str


def analyze(preset: FigurePreset, records: list, settings: dict[str, Any]) -> MemoryAnalysis:
    import pandas as pd

    data = pd.DataFrame(rows(settings))
    sizes = settings["sizes"]
    return MemoryAnalysis(data, judge(data, sizes), sizes, settings["optimizers"],
                          settings["precision"])


def judge(data: Any, sizes: list[str]) -> Verdict:
    lines, held, numbers = [], True, {}
    for size in sizes:
        states = data[data["task"] == size].set_index("optimizer")["optimizer_states"]
        ordered = states["swan"] < states["galore"] < states["adamw"]
        held &= bool(ordered)
        numbers[size] = {name: int(states[name]) for name in ("swan", "galore", "adamw")}
        lines.append(f"{size}: optimizer states swan {states['swan'] / 1e9:.3f} GB < galore "
                     f"{states['galore'] / 1e9:.3f} GB < adamw {states['adamw'] / 1e9:.3f} GB: "
                     f"{'yes' if ordered else 'NO'}")
    for _, row in data.dropna(subset=["published_weights_and_states_gb"]).iterrows():
        ours = (row["weights"] + row["optimizer_states"]) / 1e9
        paper = row["published_weights_and_states_gb"]
        lines.append(f"{row['task']} {row['optimizer']}: weights + states {ours:.2f} GB, "
                     f"published {paper:.2f} GB ({ours / paper - 1:+.0%})")
    return Verdict(held, lines, numbers)


def draw(analysis: MemoryAnalysis) -> Figure:
    """One panel per size: a stacked bar per optimizer, beside the published figure."""
    import pandas as pd

    data, sizes, optimizers = analysis.data, analysis.sizes, analysis.optimizers
    fig, axes = new_figure(ncols=len(sizes), width=2.6, height=3.4)
    for ax, size in zip(axes, sizes):
        here = data[data["task"] == size].set_index("optimizer").loc[optimizers]
        bottom = pd.Series(0.0, index=here.index)
        for part, colour in zip(PARTS, PALETTE):
            gigabytes = here[part] / 1e9
            ax.bar(range(len(optimizers)), gigabytes, bottom=bottom, color=colour, width=0.7,
                   label=part.replace("_", " ") if ax is axes[0] else None)
            bottom += gigabytes
        paper = here["published_weights_and_states_gb"]
        marked = [i for i, value in enumerate(paper) if pd.notna(value)]
        ax.scatter(marked, paper.iloc[marked], marker="D", color="black", zorder=3, s=18,
                   label="published weights + states" if ax is axes[0] else None)
        ax.set_xticks(range(len(optimizers)), optimizers, rotation=45, ha="right")
        ax.set_title(size.removeprefix("llama").upper())
        ax.grid(axis="x", visible=False)
    axes[0].set_ylabel(f"memory (GB, {analysis.precision})")
    fig.legend(loc="outside lower center", ncols=4)
    return fig
