"""``adam_eos``: full-batch Adam at the adaptive edge of stability (Cohen et al. 2022, "Adaptive
Gradient Methods at the Edge of Stability"; docs/references.md §3.2).

The ``eos`` figure with Adam's quantities: the preconditioned sharpness λ_max(P⁻¹H), P = diag(
sqrt(v̂) + ε) (``sharpness/preconditioned``), against Adam's threshold (2+2β₁)/((1−β₁)η), 38/η for
β₁ = 0.9 (``sharpness/threshold``), one colour per step size, and the training loss. The claim
checked, as in ``eos``: the mean preconditioned sharpness over the late part of each run is within
``tolerance`` of the threshold. Analysis, drawing and the CSV's layout are those of
:mod:`optbench.figures.eos`.
"""

from __future__ import annotations

from typing import Any

from optbench.contract import PRECONDITIONED
from optbench.figures.eos import Edge, EdgeAnalysis, analyze_edge
from optbench.figures.preset import FigurePreset
from optbench.sweeps.collect import RunRecord

ADAM = Edge(PRECONDITIONED, r"preconditioned sharpness $\lambda_{\max}(P^{-1}H)$",
            "λ_max(P⁻¹H)")


def analyze(preset: FigurePreset, records: list[RunRecord],
            settings: dict[str, Any]) -> EdgeAnalysis:
    return analyze_edge(ADAM, records, settings)
