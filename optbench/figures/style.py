"""One look for every figure: the Okabe–Ito colour-blind-safe palette, readable sizes, PNG+PDF."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision deficiencies
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

RC = {
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "lines.linewidth": 1.6,
    "figure.dpi": 100,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by publishers
}


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.2) -> tuple[Figure, list]:
    """A figure of ``nrows × ncols`` panels in the house style; the axes as a flat list."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cycler import cycler

    plt.rcParams.update({**RC, "axes.prop_cycle": cycler(color=PALETTE)})
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                             layout="constrained")
    return fig, [ax for row in axes for ax in row]


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """``name``.png (200 dpi) and ``name``.pdf in ``out_dir``."""
    import logging

    import matplotlib.pyplot as plt

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=200)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths
