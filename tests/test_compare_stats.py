"""The numbers of `optbench compare`, each against a closed form, a hand computation or scipy:
the power-law fit and the speedups, Welch's test and the seeds needed, performance profiles,
learning-rate sensitivity, and time to target read from a hand-written metrics.jsonl."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from optbench.contract import RunStatus, Summary
from optbench.runner.run_dir import RunDir
from optbench.runner.target import Crossing, summary_record
from optbench.sweeps import profiles
from optbench.sweeps.reach import mean_curve, reach, run_lines, time_to_target
from optbench.sweeps.sensitivity import Point, near_best, width_decades
from optbench.sweeps.significance import seeds_needed, untestable, welch
from optbench.sweeps.speedup import PowerLaw, data_equivalent, fit_power_law, work_ratio


@pytest.mark.parametrize(("a", "b", "c", "data"), [
    (2.0, 0.5, 1.5, np.linspace(1e3, 1e6, 40)),  # an eval every so many examples: even spacing
    (50.0, 0.3, 2.0, np.geomspace(1e5, 1e9, 25)),  # budgets a few times apart, in tokens
    (0.8, 1.2, 0.0, np.linspace(10, 600, 30)),  # a suboptimality decaying to 0, in steps
])
def test_the_fit_recovers_a_known_power_law(a, b, c, data):
    fit = fit_power_law([0.0, *data], [a * 1e9 + c, *(a * data ** -b + c)])  # D = 0 is left out
    assert fit is not None and fit.points == len(data)
    assert fit.a == pytest.approx(a, rel=0.01) and fit.b == pytest.approx(b, rel=0.01)
    assert fit.c == pytest.approx(c, rel=0.01, abs=1e-3 * a * data.max() ** -b)
    assert fit.r2 > 0.9999 and fit.rmse < 1e-6 * (a * data.min() ** -b)
    assert (fit.d_min, fit.d_max) == (data.min(), data.max())


def test_too_few_points_give_no_fit():
    assert fit_power_law([1, 2, 3], [3.0, 2.0, 1.5]) is None
    assert fit_power_law([1, 2, 3, 4, 5], [1.0] * 5) is None  # a flat curve has no power law


def test_data_equivalent_inverts_the_fit():
    fit = PowerLaw(a=2.0, b=0.5, c=1.5, r2=1.0, rmse=0.0, points=10, d_min=1e3, d_max=1e6)
    loss = 2.0 * 4e4 ** -0.5 + 1.5  # the baseline needs D = 40 000 to reach it
    found = data_equivalent(fit, loss, 2e4)
    assert found.baseline_data == pytest.approx(4e4) and found.speedup == pytest.approx(2.0)
    assert not found.extrapolated and found.note == ""
    beyond = data_equivalent(fit, 2.0 * 1e7 ** -0.5 + 1.5, 1e6)  # D_base = 1e7 > d_max
    assert beyond.extrapolated and beyond.speedup == pytest.approx(10.0) and beyond.note == "extrapolated"
    floor = data_equivalent(fit, 1.4, 1e5)  # below the asymptote: no D reaches it
    assert floor.speedup is None and floor.baseline_data == math.inf and floor.note.startswith("L <= c")


def test_work_ratio():
    assert work_ratio(300.0, 100.0) == 3.0
    assert work_ratio(300.0, None) is None and work_ratio(None, 100.0) is None  # not reached
    assert work_ratio(0.0, 0.0) == 1.0 and work_ratio(5.0, 0.0) == math.inf


def test_welch_is_scipys_unequal_variance_t_test():
    rng = np.random.default_rng(0)
    values, baseline = rng.normal(1.0, 0.1, 5), rng.normal(1.1, 0.3, 4)
    reference = stats.ttest_ind(values, baseline, equal_var=False)
    found = welch(list(values), list(baseline))
    assert found.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert found.p == pytest.approx(reference.pvalue, rel=1e-12)
    assert welch([1.0], [1.0, 2.0]) is None  # a single seed has no variance
    # deterministic runs (full batch: every seed ends the same) have no spread to test against
    assert untestable([0.5, 0.5, 0.5], [0.7, 0.7, 0.7]) == "n/a: no spread over seeds"
    assert welch([0.5, 0.5, 0.5], [0.7, 0.7, 0.7]) is None and seeds_needed([0.5, 0.5], [0.7, 0.7]) is None
    assert untestable([0.5, 0.5, 0.5], [0.7, 0.8, 0.7]) is None  # one arm's spread is enough


def test_seeds_needed_by_the_normal_approximation():
    # means 2 and 1 (δ = 1), both sample variances 2 (σ² = 2); z_0.995 = 2.5758293, z_0.8 = 0.8416212:
    # n = 2 (3.4174505)² · 2 / 1 = 46.716 -> 47
    assert seeds_needed([1.0, 3.0], [0.0, 2.0]) == 47
    assert seeds_needed([1.0, 3.0], [11.0, 13.0]) == 2  # a large effect: a t-test's minimum
    assert seeds_needed([1.0, 3.0], [1.0, 3.0]) == math.inf  # no effect
    assert seeds_needed([1.0], [1.0, 2.0]) is None


def test_performance_profile_score_of_a_hand_example():
    times = [{"A": 10.0, "B": 20.0}, {"A": 20.0, "B": 10.0}, {"A": math.inf, "B": 30.0}]
    ratios = [profiles.ratios(task) for task in times]
    a, b = [r["A"] for r in ratios], [r["B"] for r in ratios]
    assert a == [1.0, 2.0, math.inf] and b == [2.0, 1.0, 1.0]
    # ρ_A is 1/3 on [1, 2) and 2/3 on [2, 4]: ∫₁⁴ ρ_A = 1/3 + 2·2/3 = 5/3; ρ_B is 2/3 on [1, 2) and 1
    # on [2, 4]: ∫₁⁴ ρ_B = 2/3 + 2 = 8/3; each divided by r_max − 1 = 3
    assert profiles.score(a) == pytest.approx(5 / 9) and profiles.score(b) == pytest.approx(8 / 9)
    assert profiles.rho(b, 1.0) == pytest.approx(2 / 3) and profiles.rho(b, 2.0) == 1.0
    assert profiles.score([2.5, 5.0]) == pytest.approx(1.5 / 6)  # one task past r_max adds nothing
    assert 2.5 in profiles.tau_grid([2.5, 5.0]) and max(profiles.tau_grid([2.5])) == profiles.R_MAX


def test_ratios_when_the_fastest_met_the_target_at_once():
    assert profiles.ratios({"A": 0.0, "B": 5.0}) == {"A": 1.0, "B": math.inf}
    assert profiles.ratios({"A": math.inf, "B": math.inf}) == {"A": math.inf, "B": math.inf}


def test_lr_sensitivity_width_in_decades():
    points = [Point("lr=1e-3", 1e-3, 1.00, False), Point("lr=1e-2", 1e-2, 1.02, False),
              Point("lr=1e-1", 1e-1, 1.04, False), Point("lr=1", 1.0, 2.0, False),
              Point("lr=10", 10.0, math.inf, True, "diverged")]
    assert [p.label for p in near_best(points, "min", 0.05)] == ["lr=1e-3", "lr=1e-2", "lr=1e-1"]
    assert width_decades(points, "min", 0.05) == pytest.approx(2.0)
    assert width_decades(points, "min", 0.01) == 0.0  # only the best is that close
    accuracy = [Point("a", 1e-3, 0.90, False), Point("b", 1e-2, 0.88, False), Point("c", 1e-1, 0.50, False)]
    assert width_decades(accuracy, "max", 0.05) == pytest.approx(1.0)
    assert width_decades(points[:1], "min") is None  # one trial: n/a


def _write_run(run_dir: Path, lines: list[dict], target: dict | None = None) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    RunDir(run_dir).write_summary(Summary(RunStatus.COMPLETED, target=target))


LINES = [
    {"step": 0, "examples": 0, "perf/train_seconds": 0.0, "eval/loss": 1.0},
    {"step": 10, "examples": 320, "perf/train_seconds": 1.0, "train/loss": 0.9},
    {"step": 20, "examples": 640, "perf/train_seconds": 2.0, "eval/loss": 0.8, "train/loss": 0.7},
    {"step": 40, "examples": 1280, "perf/train_seconds": 4.0, "eval/loss": 0.4},
]


def test_time_to_target_from_a_hand_written_metrics_jsonl(tmp_path):
    _write_run(tmp_path / "run", LINES)
    lines = run_lines(tmp_path / "run")
    # 0.5 lies 3/4 of the way from the step-20 eval (0.8) to the step-40 one (0.4)
    assert time_to_target(tmp_path / "run", lines, "eval/loss", 0.5, "min") == Crossing(35.0, 1120.0, 3.5, 40)
    assert time_to_target(tmp_path / "run", lines, "eval/loss", 0.1, "min") is None
    old = [{k: v for k, v in line.items() if k in ("step", "eval/loss")} for line in LINES]
    _write_run(tmp_path / "old", old)  # a run from before lines carried work and seconds
    assert time_to_target(tmp_path / "old", old, "eval/loss", 0.5, "min") == Crossing(35.0, None, None, 40)


def test_a_recorded_target_is_read_from_the_summary_when_it_is_the_same_target(tmp_path):
    recorded = summary_record("eval/loss", 0.5, "min", Crossing(33.0, 1000.0, 3.3, 40), None)  # as runs write it
    _write_run(tmp_path / "run", LINES, recorded)
    assert time_to_target(tmp_path / "run", LINES, "eval/loss", 0.5, "min") == Crossing(33.0, 1000.0, 3.3, 40)
    # another value, or mode: recomputed from the lines
    assert time_to_target(tmp_path / "run", LINES, "eval/loss", 0.6, "min").step == pytest.approx(30.0)
    assert time_to_target(tmp_path / "run", LINES, "eval/loss", 0.5, "max").step == 0.0
    _write_run(tmp_path / "missed", LINES, summary_record("eval/loss", 0.5, "min", None, None))
    assert time_to_target(tmp_path / "missed", LINES, "eval/loss", 0.5, "min") is None


def test_mean_curve_over_seeds_and_where_it_reaches_a_value():
    first = [{"step": 0, "eval/loss": 1.0}, {"step": 10, "examples": 100, "eval/loss": 0.6},
             {"step": 20, "examples": 200, "eval/loss": 0.2}]
    second = [{"step": 0, "eval/loss": 1.0}, {"step": 10, "examples": 100, "eval/loss": 0.4},
              {"step": 15, "examples": 150, "eval/loss": 0.3}, {"step": 20, "examples": 200, "eval/loss": 0.4}]
    curve = mean_curve([first, second], "eval/loss", "examples")  # step 15: not logged by both
    assert curve[0] == [0.0, 100.0, 200.0] and curve[1] == pytest.approx([1.0, 0.5, 0.3])
    assert reach(curve, 0.4, "min") == pytest.approx(150.0) and reach(curve, 0.1, "min") is None
