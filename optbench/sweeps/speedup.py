"""Speedup over a baseline, two ways (docs/references.md §6.2):

- **work ratio**: W_base(V) / W_opt(V), the work (tokens, examples or steps) the baseline needs to
  reach a value V divided by the work the optimizer needs to reach the same V, with V the
  baseline's own final value;
- **data-equivalent** ("Fantastic Pretraining Optimizers", Wen et al. 2025): fit the baseline's
  loss against data, L(D) = a·D^(−b) + c, invert it at the optimizer's final loss L,
  D_base(L) = ((L − c)/a)^(−1/b), and divide by the data the optimizer used: D_base(L) / D_opt.
  A loss at or below the fitted floor c has no finite D_base; a D_base outside the fitted range of
  D is an extrapolation and flagged as one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# where the fit starts b: scaling-law exponents of loss in data are mostly 0.05–0.5 (Kaplan et
# al. 2020 report 0.095; Hoffmann et al. 2022 0.28); trying several starts avoids a poor local fit
B_STARTS = (0.05, 0.3, 1.0)


@dataclass(frozen=True)
class PowerLaw:
    """L(D) = a·D^(−b) + c fitted to ``points`` points with D in [d_min, d_max]."""

    a: float
    b: float
    c: float
    r2: float  # 1 − SS_res / SS_tot on the fitted points
    rmse: float  # √(SS_res / n)
    points: int
    d_min: float
    d_max: float

    def __call__(self, d: float) -> float:
        return self.a * d ** (-self.b) + self.c

    def data_for(self, loss: float) -> float:
        """D at which the fit reaches ``loss``: ((L − c)/a)^(−1/b); inf when L <= c."""
        if loss <= self.c:
            return math.inf
        return ((loss - self.c) / self.a) ** (-1.0 / self.b)


def fit_power_law(data: Sequence[float], loss: Sequence[float]) -> PowerLaw | None:
    """Least-squares fit of L(D) = a·D^(−b) + c (scipy.optimize.curve_fit, bounds a > 0, b > 0,
    c <= min L, and c >= 0 when every L is positive) to the points with D > 0 and finite L; None with fewer than four such points (three
    parameters need one spare) or when no start converges. D is scaled by its largest value
    during the fit so that a stays of the order of the losses."""
    import numpy as np
    from scipy.optimize import curve_fit

    d = np.asarray(data, dtype=float)
    y = np.asarray(loss, dtype=float)
    keep = (d > 0) & np.isfinite(d) & np.isfinite(y)
    d, y = d[keep], y[keep]
    if len(d) < 4 or np.ptp(y) == 0:
        return None
    scale = d.max()
    x = d / scale

    def model(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
        return a * x ** (-b) + c

    floor = y.min()
    # a metric never seen below 0 (a loss, an error, a suboptimality) has its floor c at 0 or above
    lowest = 0.0 if floor > 0 else -np.inf
    best = None
    for b0 in B_STARTS:
        c0 = max(floor - 0.1 * np.ptp(y), lowest)
        a0 = max((y[np.argmin(x)] - c0) * x.min() ** b0, 1e-12)
        try:
            (a, b, c), _ = curve_fit(model, x, y, p0=(a0, b0, c0), maxfev=20000,
                                     bounds=((0, 0, lowest), (np.inf, np.inf, floor)))
        except (RuntimeError, ValueError):  # no convergence from this start
            continue
        residual = float(np.sum((y - model(x, a, b, c)) ** 2))
        if best is None or residual < best[0]:
            best = (residual, a, b, c)
    if best is None:
        return None
    residual, a, b, c = best
    total = float(np.sum((y - y.mean()) ** 2))
    return PowerLaw(a=float(a * scale**b), b=float(b), c=float(c), r2=1.0 - residual / total,
                    rmse=math.sqrt(residual / len(y)), points=len(y), d_min=float(d.min()), d_max=float(d.max()))


@dataclass(frozen=True)
class DataEquivalent:
    speedup: float | None  # D_base(L) / D_opt; None when D_base(L) is not finite
    baseline_data: float  # D_base(L): inf when L <= c
    extrapolated: bool  # D_base(L) outside the fitted range of D

    @property
    def note(self) -> str:
        if not math.isfinite(self.baseline_data):
            return "L <= c: no finite D"
        return "extrapolated" if self.extrapolated else ""


def data_equivalent(fit: PowerLaw, loss: float, data: float) -> DataEquivalent:
    """The data-equivalent speedup of a run that reached ``loss`` after ``data`` work units."""
    needed = fit.data_for(loss)
    if not math.isfinite(needed):
        return DataEquivalent(None, needed, False)
    return DataEquivalent(needed / data, needed, not fit.d_min <= needed <= fit.d_max)


def work_ratio(baseline_work: float | None, work: float | None) -> float | None:
    """W_base / W_opt; None when either did not reach the value. A ratio over zero work (the
    value was met at the start) is inf, or 1 when both met it at the start."""
    if baseline_work is None or work is None:
        return None
    if work == 0:
        return 1.0 if baseline_work == 0 else math.inf
    return baseline_work / work
