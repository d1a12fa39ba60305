"""`optbench figure matrix-sensing` at smoke scale, through the CLI: the symmetric XXᵀ
parameterization converges linearly at k = r and only as 1/T at k > r; the asymmetric FGᵀ is
linear again at k > r (its rate against α is reported)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from helpers import made_figure

from optbench.figures.matrix_sensing import late_part, line


def test_late_part_is_the_last_fraction_above_the_floor():
    steps = list(range(0, 101, 10))
    errors = [1.0, 0.5, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-13, 1e-15, 1e-15]
    assert late_part(steps, errors, fit_from=1e-2, floor=1e-12) == ([20, 30, 40, 50, 60, 70],
                                                                      errors[2:8])
    assert late_part(steps, errors, 1e-2, 1e-12, fraction=0.5)[0] == [50, 60, 70]
    assert late_part(steps, [1.0] * 11, 1e-2, 1e-12) == ([], [])


def test_line_fits_exactly_on_a_line():
    slope, intercept, r2 = line([0, 1, 2, 3], [1.0, -1.0, -3.0, -5.0])
    assert slope == pytest.approx(-2) and intercept == pytest.approx(1) and r2 == pytest.approx(1)


@pytest.mark.slow  # 16 runs of 1,500 GD steps: 25-80 s on 2 CPU cores, depending on their load
def test_matrix_sensing_figure_at_smoke_scale(tmp_path):
    out, _, verdict = made_figure("matrix-sensing", tmp_path)
    numbers = verdict["numbers"]
    assert len(numbers["runs"]) == 16  # {symmetric, asymmetric} × k ∈ {2, 4} × 4 α
    exact, over = numbers["exact_rank"], numbers["over_parameterized"]
    # (1) k = r: log error is a straight line in step; GD contracts by |1 − 2ησ| = 0.4 a step
    assert exact["linear"] and exact["linear_r2_min"] > 0.999
    assert exact["rate_min"] == pytest.approx(-math.log(0.4), rel=0.02)
    # (2) k > r: a power law, error ~ 1/T (log–log slope −1), hundreds of times slower than k = r
    assert over["sublinear"]
    assert -1.1 < over["loglog_slope_min"] <= over["loglog_slope_max"] < -0.9
    assert over["loglog_r2_min"] > 0.999
    assert over["rate_ratio_max"] < 0.01
    sym_over = [r for r in numbers["runs"] if r["parameterization"] == "symmetric" and r["k"] == 4]
    assert all(r["final_error"] > 1e-5 for r in sym_over)  # far from recovered after 1,500 steps
    # (3) asymmetric k > r: linear at every α, faster with larger α (reported, not in `held`)
    asym = numbers["asymmetric"]
    assert asym["linear_r2_min"] > 0.99
    rates = [asym["rates"][a] for a in ("0.05", "0.07", "0.1", "0.14")]
    assert rates == sorted(rates) and rates[-1] / rates[0] > 2
    assert asym["rate_vs_alpha_exponent"] > 1 and asym["correlation_rate_alpha2"] > 0.9
    assert not numbers["held"]["alpha_squared_counted"]
    assert any(line.startswith("(3) asymmetric k > r: rate ∝ α^") for line in verdict["lines"])

    data = pd.read_csv(out / "matrix-sensing.csv")
    assert {"panel", "curve", "parameterization", "k", "r", "init_scale", "step", "recovery_error",
            "linear_rate"} <= set(data.columns)
    assert set(data["panel"]) == {"a", "b", "c", "d"}
    measured = data[data["curve"] == "measured"]
    assert set(measured["k"]) == {2, 4} and set(measured["init_scale"]) == {0.05, 0.07, 0.1, 0.14}
    assert measured["step"].min() == 0 and measured["step"].max() == 1500
    assert (measured["recovery_error"] > 0).all()
    rates_drawn = data[(data["panel"] == "d") & (data["curve"] == "rate")]
    assert len(rates_drawn) == 12  # every k = r run, and the asymmetric k > r ones
