"""``matrix_sensing``: recovery error of gradient descent against steps, for the symmetric
parameterization XXᵀ at k = r and k > r, and for the asymmetric FGᵀ at k > r over several
initialization scales α (Xiong, Ding & Du, "How Over-Parameterization Slows Down Gradient Descent
in Matrix Sensing: The Curses of Symmetry and Initialization"; docs/references.md §4.1).

The claims checked, each on "the late part" of a curve: of the stretch from the first logged error
below ``fit_from`` to the last one above ``floor`` (before fp64 round-off), the last
``late_fraction`` of its steps (past the early transients: at small α the asymmetric runs first
creep sublinearly, like the symmetric ones, before their linear phase), with at least
``min_points`` points:

1. symmetric, k = r: linear convergence, exp(−Ω(T)). log(error) against step is a straight line
   (R² ≥ ``linear_r2``) with a clearly negative slope; its rate, −d log(error)/d step, is reported.
2. symmetric, k > r: no faster than Ω(1/T²). The paper bounds the squared Frobenius error
   ‖XXᵀ − M*‖²_F; ``eval/recovery_error`` is the (relative) Frobenius norm itself, so the bound
   reads error ≥ Ω(1/T): a log–log slope no steeper than −1 (GD reaches it: the excess directions
   J shrink as J ← J − ηJJᵀJ, so ‖JJᵀ‖_F ≈ 1/(2ηT)). Checked: the fitted log–log slope is no
   steeper than ``sublinear_slope`` and the best straight-line rate of log(error) against step is
   below ``rate_ratio`` × the slowest k = r rate.
3. asymmetric, k > r: linear again, exp(−Ω(α²T)): a straight-line rate per α, and the exponent p
   of rate ∝ α^p fitted on log–log axes (theory: 2), with the correlation of rate and α².
   Counted in ``held`` when ``alpha_squared_in_verdict``: the constant in Ω(α²T) depends on the
   draw (on the imbalance FᵀF − GᵀG, which gradient flow conserves), and at fixed seed the rate
   follows α² only as α → 0; on some seeds it already drifts at α ≈ 0.1.

Panels: (a) the symmetric runs, log error against step, with an inset of the first steps;
(b) the asymmetric runs; (c) the symmetric k > r runs on log–log axes beside a slope −1 guide;
(d) every fitted linear rate against α, with the power-law fit. The fits are drawn (dotted) over
their windows. The CSV holds every plotted point: ``panel``, ``curve`` (measured, linear fit,
power-law fit, rate), the run's setting, ``step``, ``recovery_error`` and ``linear_rate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optbench.contract import RunStatus
from optbench.figures.curves import curve, setting
from optbench.figures.preset import FigurePreset
from optbench.figures.style import PALETTE, new_figure
from optbench.figures.verdict import Analysis, Verdict

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METRIC = "eval/recovery_error"
STYLES = ("-", "--", "-.", ":")  # one per α in the symmetric panels
ALPHA_COLOURS = (PALETTE[2], PALETTE[4], PALETTE[3], PALETTE[5], PALETTE[7], PALETTE[0])
K_COLOURS = (PALETTE[0], PALETTE[1], PALETTE[3], PALETTE[4])  # k = r first, then each k > r
GREY = "#999999"
FIT_STYLE = {"color": "black", "linestyle": (0, (1, 1.5)), "linewidth": 1.3, "zorder": 5}
ERROR_LABEL = r"recovery error $\|\hat M - M^*\|_F\,/\,\|M^*\|_F$"


@dataclass
class Fit:
    """Straight-line fits of ln(error) over a curve's late part."""

    first: int  # the window's first and last steps
    last: int
    points: int
    rate: float  # −slope of ln(error) against step: the linear rate, per step
    linear_r2: float
    loglog_slope: float  # slope of ln(error) against ln(step)
    loglog_r2: float
    linear_intercept: float  # of ln(error) against step
    loglog_intercept: float  # of ln(error) against ln(step)

    def numbers(self) -> dict[str, Any]:
        return {"fit_steps": [self.first, self.last], "points": self.points,
                "linear_rate": self.rate, "linear_r2": self.linear_r2,
                "loglog_slope": self.loglog_slope, "loglog_r2": self.loglog_r2}


@dataclass
class Run:
    """One completed run: its setting, its recovery-error curve and the fits of its late part."""

    parameterization: str
    k: int
    r: int
    alpha: float
    steps: list[int] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    fit: Fit | None = None

    @property
    def symmetric(self) -> bool:
        return self.parameterization == "symmetric"

    @property
    def exact(self) -> bool:
        return self.k == self.r

    def describe(self) -> str:
        return f"{self.parameterization} k={self.k} (r={self.r}) α={self.alpha:g}"

    def row(self, panel: str, kind: str, step: float, error: float) -> dict[str, Any]:
        return {"panel": panel, "curve": kind, "parameterization": self.parameterization,
                "k": self.k, "r": self.r, "init_scale": self.alpha, "step": step,
                "recovery_error": error}


def line(x: list[float], y: list[float]) -> tuple[float, float, float]:
    """Least squares y ≈ slope·x + intercept: (slope, intercept, R²)."""
    import numpy as np

    x_, y_ = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    slope, intercept = np.polyfit(x_, y_, 1)
    residual = float(((y_ - (slope * x_ + intercept)) ** 2).sum())
    total = float(((y_ - y_.mean()) ** 2).sum())
    return float(slope), float(intercept), 1.0 - residual / total if total else 1.0


def late_part(steps: list[int], errors: list[float], fit_from: float, floor: float,
              fraction: float = 1.0) -> tuple[list, list]:
    """The stretch from the first error below ``fit_from`` up to (not past) the first below
    ``floor``; of it, the last ``fraction`` of its steps."""
    start = next((i for i, (s, e) in enumerate(zip(steps, errors)) if s > 0 and e < fit_from), None)
    if start is None:
        return [], []
    end = next((i for i in range(start, len(errors)) if not errors[i] > floor), len(errors))
    if end == start:
        return [], []
    first = steps[end - 1] - fraction * (steps[end - 1] - steps[start])
    start = next(i for i in range(start, end) if steps[i] >= first)
    return steps[start:end], errors[start:end]


def fit(steps: list[int], errors: list[float], settings: dict[str, Any]) -> Fit | None:
    xs, ys = late_part(steps, errors, settings["fit_from"], settings["floor"],
                       settings["late_fraction"])
    if len(xs) < settings["min_points"]:
        return None
    logs = [math.log(e) for e in ys]
    slope, intercept, linear_r2 = line(xs, logs)
    loglog_slope, loglog_intercept, loglog_r2 = line([math.log(s) for s in xs], logs)
    return Fit(xs[0], xs[-1], len(xs), -slope, linear_r2, loglog_slope, loglog_r2, intercept,
               loglog_intercept)


def read_runs(records: list, settings: dict[str, Any]) -> tuple[list[Run], list[str]]:
    """The completed runs, fitted, in (parameterization, k, α) order; a line per run left out."""
    found, skipped = [], []
    for record in records:
        if record.path is None or record.status != RunStatus.COMPLETED:
            skipped.append(f"left out: job {record.job} ({' '.join(record.overrides)}) is "
                           f"{record.status}" + (f": {record.reason}" if record.reason else ""))
            continue
        steps, errors = curve(record, METRIC)
        run = Run(setting(record, "task.parameterization"), setting(record, "task.k"),
                  setting(record, "task.r"), float(setting(record, "task.init_scale")),
                  steps, errors)
        run.fit = fit(steps, errors, settings)
        found.append(run)
    found.sort(key=lambda run: (run.parameterization, run.k, run.alpha))
    return found, skipped


@dataclass
class Trace:
    """One line of panels (a)–(c): a run's measured errors, or a fit over its late part."""

    run: Run
    panel: str  # a, b or c
    curve: str  # measured, linear fit or power-law fit (the CSV's ``curve``)
    x: list[float]
    y: list[float]


def run_traces(run: Run) -> list[Trace]:
    """The run's lines, in drawing order: its errors in (a) if symmetric, else in (b), with the
    exponential fit of the late part where the claim is linear convergence (k = r; asymmetric
    k > r); a symmetric k > r run's errors again in (c), log–log, with the power-law fit."""
    panel = "a" if run.symmetric else "b"
    found = [Trace(run, panel, "measured", run.steps, run.errors)]
    if run.fit is not None and (run.exact or not run.symmetric):
        found.append(Trace(run, panel, "linear fit", *_fitted(run)))
    if run.symmetric and not run.exact:
        positive = [(s, e) for s, e in zip(run.steps, run.errors) if s > 0]
        found.append(Trace(run, "c", "measured", [s for s, _ in positive],
                           [e for _, e in positive]))
        if run.fit is not None:
            found.append(Trace(run, "c", "power-law fit", *_fitted(run, loglog=True)))
    return found


def _fitted(run: Run, loglog: bool = False) -> tuple[list[float], list[float]]:
    """The fitted line over the run's fit window: exponential in step, or a power law."""
    import numpy as np

    f = run.fit
    if loglog:
        grid = np.geomspace(f.first, f.last, 40)
        return list(grid), list(np.exp(f.loglog_intercept) * grid ** f.loglog_slope)
    return [f.first, f.last], [math.exp(f.linear_intercept - f.rate * x) for x in (f.first, f.last)]


def rate_exponent(found: list[Run]) -> tuple[float, float, float] | None:
    """(p, ln c, R²) of rate ≈ c·α^p over the asymmetric k > r runs with a fit; None below 2 α."""
    asym = [run for run in found if not run.symmetric and not run.exact
            and run.fit is not None and run.fit.rate > 0]
    if len({run.alpha for run in asym}) < 2:
        return None
    return line([math.log(run.alpha) for run in asym], [math.log(run.fit.rate) for run in asym])


def rate_law(rated: list[Run],
             exponent: tuple[float, float, float] | None) -> tuple[Any, Any] | None:
    """Panel (d)'s fitted power law, rate ≈ c·α^p, over the asymmetric k > r runs' α: (α, rate)."""
    import numpy as np

    if exponent is None:
        return None
    p, c, _ = exponent
    alphas = [run.alpha for run in rated if not run.exact]
    xs = np.geomspace(min(alphas), max(alphas), 20)
    return xs, np.exp(c) * xs ** p


def tidy(traces: list[Trace], rated: list[Run], law: tuple[Any, Any] | None) -> Any:
    """Every plotted point, one row each, in drawing order."""
    import pandas as pd

    rows = [trace.run.row(trace.panel, trace.curve, x, y)
            for trace in traces for x, y in zip(trace.x, trace.y)]
    rows += [{**run.row("d", "rate", None, None), "linear_rate": run.fit.rate} for run in rated]
    if law is not None:
        rows += [{"panel": "d", "curve": "power-law fit", "init_scale": x, "linear_rate": y}
                 for x, y in zip(*law)]
    return pd.DataFrame(rows).astype({"k": "Int64", "r": "Int64"})


@dataclass
class RecoveryAnalysis(Analysis):
    """The runs, fitted and judged, and every line and point that :func:`draw` plots."""

    runs: list[Run]  # completed, in (parameterization, k, α) order
    traces: list[Trace]  # panels (a)–(c), in drawing order
    rated: list[Run]  # panel (d): the runs with a positive fitted rate, k = r ones first
    exponent: tuple[float, float, float] | None  # (p, ln c, R²) of rate ≈ c·α^p, asymmetric k > r
    law: tuple[Any, Any] | None  # that power law over their α (:func:`rate_law`)


def analyze(preset: FigurePreset, records: list, settings: dict[str, Any]) -> RecoveryAnalysis:
    found, skipped = read_runs(records, settings)
    traces = [trace for run in found for trace in run_traces(run)]
    fitted = [run for run in found if run.fit is not None and run.fit.rate > 0]
    rated = ([run for run in fitted if run.exact]
             + [run for run in fitted if not run.symmetric and not run.exact])
    exponent = rate_exponent(found)
    law = rate_law(rated, exponent)
    verdict = judge(found, exponent, settings)
    verdict.lines += skipped
    return RecoveryAnalysis(tidy(traces, rated, law), verdict, found, traces, rated, exponent, law)


def _least(values, default=None):
    values = list(values)
    return min(values) if values else default


def _most(values, default=None):
    values = list(values)
    return max(values) if values else default


def judge(found: list[Run], exponent: tuple[float, float, float] | None,
          settings: dict[str, Any]) -> Verdict:
    """Claims (1)–(3) of the module's docstring; ``exponent`` is :func:`rate_exponent`'s."""
    import numpy as np

    lines: list[str] = []
    exact = [run for run in found if run.symmetric and run.exact]
    over = [run for run in found if run.symmetric and not run.exact]
    asym = [run for run in found if not run.symmetric and not run.exact]
    numbers: dict[str, Any] = {"runs": [
        {"parameterization": run.parameterization, "k": run.k, "r": run.r, "init_scale": run.alpha,
         "final_error": run.errors[-1] if run.errors else None,
         **(run.fit.numbers() if run.fit else {"fit_steps": None})} for run in found]}
    window = (f"the last {settings['late_fraction']:.0%} of the steps with errors in "
              f"[{settings['floor']:g}, {settings['fit_from']:g}]")

    def unfitted(run: Run) -> str:
        final = f"{run.errors[-1]:.3g}" if run.errors else "none logged"
        return f"no late part to fit ({window}; final error {final})"

    # (1) k = r: a straight line in ln(error) against step
    linear = bool(exact) and all(run.fit is not None and run.fit.rate > 0
                                 and run.fit.linear_r2 >= settings["linear_r2"] for run in exact)
    for run in exact:
        f = run.fit
        lines.append(f"(1) {run.describe()}: " + (
            f"ln error vs step over steps {f.first}–{f.last} ({window}): rate {f.rate:.4g}/step "
            f"(error ×{math.exp(-f.rate):.4f} per step, a decade every "
            f"{math.log(10) / f.rate:.1f} steps), R² {f.linear_r2:.4f}"
            if f is not None and f.rate > 0 else unfitted(run)))
    exact_rates = [run.fit.rate for run in exact if run.fit is not None]
    numbers["exact_rank"] = {
        "linear": linear, "rate_min": _least(exact_rates), "rate_max": _most(exact_rates),
        "linear_r2_min": _least(run.fit.linear_r2 for run in exact if run.fit)}
    lines.append(f"(1) k = r converges linearly (R² ≥ {settings['linear_r2']} at every α): "
                 f"{'yes' if linear else 'NO'}")

    # (2) k > r: a power law, far slower than k = r
    slowest = _least(exact_rates)
    sublinear, ratios = bool(over) and bool(slowest), []
    for run in over:
        f = run.fit
        if f is None or not slowest:
            sublinear = False
            lines.append(f"(2) {run.describe()}: " + (unfitted(run) if f is None
                                                     else "no k = r rate to compare with"))
            continue
        ratios.append(f.rate / slowest)
        sublinear &= (settings["sublinear_slope"] <= f.loglog_slope < 0
                      and ratios[-1] < settings["rate_ratio"])
        lines.append(f"(2) {run.describe()}: over steps {f.first}–{f.last}, log–log slope "
                     f"{f.loglog_slope:.3f} (R² {f.loglog_r2:.4f}; theory ≥ −1, i.e. error ~ 1/T); "
                     f"straight-line rate {f.rate:.3g}/step (R² {f.linear_r2:.3f}) = "
                     f"{ratios[-1]:.3g} × k = r's slowest; final error {run.errors[-1]:.3g}")
    slopes = [run.fit.loglog_slope for run in over if run.fit]
    numbers["over_parameterized"] = {
        "sublinear": sublinear, "loglog_slope_min": _least(slopes),
        "loglog_slope_max": _most(slopes),
        "loglog_r2_min": _least(run.fit.loglog_r2 for run in over if run.fit),
        "linear_r2_max": _most(run.fit.linear_r2 for run in over if run.fit),
        "rate_ratio_max": _most(ratios)}
    lines.append(f"(2) k > r is sublinear (log–log slope ≥ {settings['sublinear_slope']}, rate < "
                 f"{settings['rate_ratio']} × k = r's): {'yes' if sublinear else 'NO'}")

    # (3) asymmetric k > r: linear, at a rate ∝ α²
    for run in asym:
        f = run.fit
        lines.append(f"(3) {run.describe()}: " + (
            f"rate {f.rate:.4g}/step over steps {f.first}–{f.last} (R² {f.linear_r2:.4f}), "
            f"rate/α² {f.rate / run.alpha ** 2:.3g}" if f is not None else unfitted(run)))
    fitted = [run for run in asym if run.fit is not None]
    low, high = settings["exponent"]
    squared = (exponent is not None and low <= exponent[0] <= high and len(fitted) == len(asym)
               and all(run.fit.linear_r2 >= settings["linear_r2"] for run in fitted))
    per_alpha2 = [run.fit.rate / run.alpha ** 2 for run in fitted]
    correlation = (float(np.corrcoef([run.alpha ** 2 for run in fitted],
                                     [run.fit.rate for run in fitted])[0, 1])
                   if len(fitted) > 1 else None)
    numbers["asymmetric"] = {
        "alpha_squared": bool(squared),
        "rates": {f"{run.alpha:g}": run.fit.rate for run in fitted},
        "linear_r2_min": _least(run.fit.linear_r2 for run in fitted),
        "rate_vs_alpha_exponent": exponent[0] if exponent else None,
        "exponent_r2": exponent[2] if exponent else None,
        "correlation_rate_alpha2": correlation}
    lines.append("(3) asymmetric k > r: " + (
        f"rate ∝ α^{exponent[0]:.3f} (log–log fit R² {exponent[2]:.4f}; theory α²), correlation "
        f"of rate with α² {correlation:.4f}, rate/α² from {min(per_alpha2):.3g} to "
        f"{max(per_alpha2):.3g} (a small α's early, sublinear stretch lasts ∝ 1/α² steps); "
        f"linear (R² ≥ {settings['linear_r2']}) with exponent in [{low:g}, {high:g}]: "
        f"{'yes' if squared else 'NO'}" if exponent else "fewer than two α with a fitted rate: NO"))

    counted = bool(settings.get("alpha_squared_in_verdict", False))
    held = linear and sublinear and (squared or not counted)
    numbers["held"] = {"exact_rank_linear": linear, "over_parameterized_sublinear": sublinear,
                       "asymmetric_alpha_squared": bool(squared), "alpha_squared_counted": counted}
    if not counted:
        lines.append("(3) is reported, not counted in `held` (alpha_squared_in_verdict: false)")
    return Verdict(bool(held), lines, numbers)


def draw(analysis: RecoveryAnalysis) -> Figure:
    """Panels (a)–(d), as the module's docstring lists them."""
    found = analysis.runs
    alphas = sorted({run.alpha for run in found})
    ks = sorted({run.k for run in found})
    look = {"alpha_colour": dict(zip(alphas, ALPHA_COLOURS * len(alphas))),
            "alpha_style": dict(zip(alphas, STYLES * len(alphas))),
            "k_colour": dict(zip(ks, K_COLOURS * len(ks)))}

    fig, (sym, asym, loglog, rates) = new_figure(ncols=2, nrows=2, width=4.6, height=3.4)
    _draw_curves(sym, asym, loglog, analysis, look)
    _draw_rates(rates, analysis, look)
    return fig


def _style(trace: Trace, look: dict) -> dict[str, Any]:
    """Fits dotted black; measured errors coloured by k with a line style per α (symmetric), by α
    (asymmetric k > r), or grey (asymmetric k = r)."""
    run = trace.run
    if trace.curve != "measured":
        return FIT_STYLE
    if run.symmetric:
        return {"color": look["k_colour"][run.k], "linestyle": look["alpha_style"][run.alpha],
                "linewidth": 1.6}
    if run.exact:
        return {"color": GREY, "linestyle": "--", "linewidth": 1.1}
    return {"color": look["alpha_colour"][run.alpha], "linestyle": "-", "linewidth": 1.6}


def _draw_curves(sym, asym, loglog, analysis: RecoveryAnalysis, look: dict) -> None:
    """Panels (a), (b): error against step, log y, with the linear fits over the late parts;
    (c): the symmetric k > r runs on log–log axes, with their power-law fits."""
    axes = {"a": sym, "b": asym, "c": loglog}
    for trace in analysis.traces:
        axes[trace.panel].plot(trace.x, trace.y, **_style(trace, look))
    for ax, name in ((sym, "(a) symmetric $XX^\\top$"), (asym, "(b) asymmetric $FG^\\top$"),
                     (loglog, "(c) symmetric, $k > r$: log–log")):
        ax.set_yscale("log")
        ax.set_xlabel("step (GD iterations)")
        ax.set_ylabel(ERROR_LABEL)
        ax.set_title(name, loc="left")
    loglog.set_xscale("log")
    _legends(sym, asym, loglog, analysis.runs, look)
    _zoom(sym, [trace for trace in analysis.traces if trace.panel == "a"], look)


def _legends(sym, asym, loglog, found: list[Run], look: dict) -> None:
    from matplotlib.lines import Line2D

    fitted = Line2D([], [], label="fit over the late part", **FIT_STYLE)

    def k_entry(k: int, r: int) -> Line2D:
        return Line2D([], [], color=look["k_colour"][k],
                      label=f"k = {k}" + (" = r" if k == r else " > r"))

    def alpha_entries(alphas) -> list[Line2D]:
        return [Line2D([], [], color="black", linestyle=look["alpha_style"][alpha], linewidth=1.0,
                       label=f"α = {alpha:g}") for alpha in sorted(alphas)]

    symmetric = [run for run in found if run.symmetric]
    ks = sorted({(run.k, run.r) for run in symmetric})
    sym.legend(handles=[*(k_entry(k, r) for k, r in ks),
                        *alpha_entries({run.alpha for run in symmetric}), fitted],
               loc="upper right", bbox_to_anchor=(1.0, 0.74))  # below k > r, beside the inset

    over = sorted({run.k for run in found if not run.symmetric and not run.exact})
    handles = [Line2D([], [], color=colour, label=f"k = {', '.join(map(str, over))}, α = {alpha:g}")
               for alpha, colour in look["alpha_colour"].items()]
    if any(not run.symmetric and run.exact for run in found):
        handles.append(Line2D([], [], color=GREY, linestyle="--", linewidth=1.1,
                              label="k = r, every α"))
    asym.legend(handles=[*handles, fitted], loc="lower right", bbox_to_anchor=(1.0, 0.1))

    over_runs = [run for run in symmetric if not run.exact]
    if over_runs:  # the theory's rate, error ∝ 1/T, above the slowest curve's end
        slowest = max(over_runs, key=lambda run: run.errors[-1])
        t_end, e_end = slowest.steps[-1], slowest.errors[-1]
        guide = loglog.plot([t_end / 30, t_end], [e_end * 3 * 30, e_end * 3], color=GREY,
                            linewidth=2.5, alpha=0.8, solid_capstyle="butt",
                            label="slope −1: error ∝ 1/T (theory)")
        loglog.legend(handles=[*(k_entry(k, r) for k, r in ks if k > r),
                               *alpha_entries({run.alpha for run in over_runs}), *guide, fitted],
                      loc="lower left")


def _zoom(ax, symmetric: list[Trace], look: dict) -> None:
    """An inset of the first steps, where k = r converges: ten decades in a few dozen steps."""
    fits = [trace for trace in symmetric if trace.curve == "linear fit"]  # k = r
    if not fits:
        return
    end = max(trace.run.fit.last for trace in fits) + 10
    inset = ax.inset_axes([0.17, 0.17, 0.3, 0.4])  # below k > r, above the round-off floor
    for trace in symmetric:
        if trace.curve == "measured":
            steps = [s for s in trace.x if s <= end]
            inset.plot(steps, trace.y[:len(steps)], **{**_style(trace, look), "linewidth": 1.1})
    for trace in fits:
        inset.plot(trace.x, trace.y, **FIT_STYLE)
    inset.set_yscale("log")
    inset.set_xlim(0, end)
    inset.set_title(f"steps 0–{end}", fontsize=8)
    inset.tick_params(labelsize=7)
    inset.grid(alpha=0.3)


def _draw_rates(ax, analysis: RecoveryAnalysis, look: dict) -> None:
    """Panel (d): the fitted linear rates against α (log–log), with the power-law fit."""
    import numpy as np
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter

    exact = [run for run in analysis.rated if run.exact]
    asym = [run for run in analysis.rated if not run.exact]
    for run in exact:
        ax.scatter(run.alpha, run.fit.rate, marker="s" if run.symmetric else "D", s=22,
                   color=PALETTE[0] if run.symmetric else GREY, zorder=3)
    for run in asym:
        ax.scatter(run.alpha, run.fit.rate, marker="o", s=34, color=look["alpha_colour"][run.alpha],
                   edgecolor="black", linewidth=0.6, zorder=4)
    handles = [entry for entry, shown in (
        (Line2D([], [], marker="s", linestyle="", color=PALETTE[0], label="symmetric, k = r"),
         any(run.symmetric for run in exact)),
        (Line2D([], [], marker="D", linestyle="", color=GREY, label="asymmetric, k = r"),
         any(not run.symmetric for run in exact)),
        (Line2D([], [], marker="o", linestyle="", color="white", markeredgecolor="black",
                label="asymmetric, k > r"), bool(asym))) if shown]
    if analysis.law is not None:
        p, c, _ = analysis.exponent
        xs, ys = analysis.law
        middle = math.exp(np.mean(np.log(xs)))  # the α² guide crosses the fit mid-range
        handles += ax.plot(xs, ys, color="black", linewidth=1.0,
                           label=f"fit: rate ∝ α$^{{{p:.2f}}}$")
        handles += ax.plot(xs, math.exp(c) * middle ** p * (xs / middle) ** 2, color="black",
                           linestyle=":", linewidth=1.0, label="theory: rate ∝ α²")
    ax.legend(handles=handles, loc="best")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("initialization scale α")
    ax.set_ylabel(r"linear rate $-\,d\ln(\mathrm{error})/d\,\mathrm{step}$")
    ax.set_title("(d) rate of the late part against α", loc="left")
    alphas = sorted({run.alpha for run in analysis.runs})
    ax.set_xticks(alphas, [f"{a:g}" for a in alphas])
    ax.xaxis.set_minor_formatter(NullFormatter())
