"""`optbench figure eos` and `optbench figure adam-eos` at smoke scale, through the CLI: full-batch
GD's sharpness settles at 2/η and full-batch Adam's preconditioned sharpness at 38/η; the figure
files, the plotted columns and a verdict that held with its ratios. The judging itself is checked
on hand-made curves first."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from helpers import made_figure, optbench_in_process

from optbench.figures.curves import curve
from optbench.figures.eos import GD, Run, judge, late_window
from optbench.figures.preset import load
from optbench.sweeps.collect import RunRecord


def gd_run(lr: float, sharpness: list[float], status: str = "completed") -> Run:
    steps = [10 * i for i in range(len(sharpness))]
    return Run("sgd", lr, status, probe_steps=steps, sharpness=sharpness,
               threshold=[2 / lr] * len(steps), loss_steps=steps, loss=[1.0] * len(steps))


def test_late_window_is_the_last_fraction_of_the_probes():
    run = gd_run(0.1, [1.0] * 10)
    assert late_window(run, 0.3) == slice(7, 10)
    assert late_window(run, 0.01) == slice(9, 10)  # at least one probe
    assert late_window(run, 1.0) == slice(0, 10)


def test_judge_averages_the_late_probes_against_the_threshold():
    rising = gd_run(0.1, [5.0, 10.0, 15.0, 19.0, 21.0, 20.0])  # 2/η = 20; late: 21, 20 -> 1.025
    verdict = judge(GD, [rising], tolerance=0.15, late=0.3)
    assert verdict.held
    numbers = verdict.numbers["runs"]["0.1"]
    assert numbers["ratio"] == pytest.approx(1.025)
    assert numbers["window_steps"] == [40, 50] and numbers["probes"] == 2
    assert numbers["reached_step"] == 30  # first probe at >= 85% of 2/η
    assert verdict.lines[0].startswith("η = 0.1: λ_max / (2/η) = 1.025")

    below = gd_run(0.2, [5.0, 6.0, 8.0, 8.0])  # 2/η = 10; late: 8, 8 -> 0.8, beyond 15%
    verdict = judge(GD, [rising, below], tolerance=0.15, late=0.3)
    assert not verdict.held and verdict.numbers["runs"]["0.2"]["ratio"] == pytest.approx(0.8)
    assert judge(GD, [rising, below], tolerance=0.25, late=0.3).held


def test_judge_fails_on_a_diverged_run_or_none():
    diverged = gd_run(0.5, [])
    diverged.status, diverged.reason = "diverged", "loss 1e9 > 1000 × first"
    verdict = judge(GD, [gd_run(0.1, [20.0] * 5), diverged], tolerance=0.15, late=0.3)
    assert not verdict.held
    assert "η = 0.5: diverged: loss 1e9 > 1000 × first" in verdict.lines
    assert not judge(GD, [], tolerance=0.15, late=0.3).held


def check_figure(tmp_path, name: str, sharpness: str, lrs: set[float], factor: float) -> dict:
    out, _, verdict = made_figure(name, tmp_path)
    data = pd.read_csv(out / f"{name}.csv")
    plotted = {"optimizer", "lr", "step", sharpness, "sharpness/threshold", "train/loss"}
    assert plotted <= set(data.columns)
    assert set(data["lr"]) == lrs
    probes = data.dropna(subset=[sharpness])
    thresholds = list(factor / probes["lr"])
    assert list(probes["sharpness/threshold"]) == pytest.approx(thresholds, rel=1e-6)
    assert probes.groupby("lr")["step"].max().min() == data["step"].max()  # probed to the end
    assert (data.dropna(subset=["train/loss"])["train/loss"] > 0).all()

    runs = verdict["numbers"]["runs"]
    assert {run["lr"] for run in runs.values()} == lrs
    assert all(run["status"] == "completed" for run in runs.values())
    return verdict


@pytest.mark.slow  # 2 runs of 300 GD steps, 11 Lanczos probes each: 15-40 s on 2 cores
def test_eos_figure_at_smoke_scale(tmp_path):
    verdict = check_figure(tmp_path, "eos", "sharpness/lambda_max", {0.2, 0.16}, 2.0)
    numbers = verdict["numbers"]
    assert numbers["tolerance"] == 0.15
    for run in numbers["runs"].values():
        assert abs(run["ratio"] - 1) <= 0.15, verdict["lines"]
        assert run["first_sharpness"] < 0.8 * run["threshold"]  # progressive sharpening first
        assert run["reached_step"] is not None and run["reached_step"] < run["window_steps"][0]
        assert run["final_loss"] < 0.05 * run["first_loss"]  # the loss keeps falling overall

    again = optbench_in_process("figure", "eos", "--out", str(tmp_path / "again"), "--from",
                                str(tmp_path / "out" / "sweep-smoke" / "0"))
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again" / "verdict.json").read_text()) == verdict
    assert "verdict at --scale smoke: held" in again.stdout


@pytest.mark.slow  # 2 runs of 300 Adam steps, 15 probes of 2 Lanczos solves: ~25 s on 2 cores
def test_adam_eos_figure_at_smoke_scale(tmp_path):
    tolerance = load("adam-eos").params["tolerance"]
    assert tolerance <= 0.2
    verdict = check_figure(tmp_path, "adam-eos", "sharpness/preconditioned", {0.02, 0.0125}, 38)
    numbers = verdict["numbers"]
    assert numbers["tolerance"] == tolerance and numbers["sharpness"] == "sharpness/preconditioned"
    for run in numbers["runs"].values():
        assert abs(run["ratio"] - 1) <= tolerance, verdict["lines"]
        assert run["rule"] == "38/η"
        assert run["first_sharpness"] < 0.6 * run["threshold"]  # it rises to the threshold


def test_a_diverged_runs_logged_nan_reads_as_a_float(tmp_path):
    """metrics.jsonl holds non-finite values as strings; a figure reads them back as floats, so
    a diverged run's last loss formats like any other."""
    (tmp_path / "metrics.jsonl").write_text(
        '{"step": 1, "train/loss": 2.5}\n{"step": 2, "train/loss": "nan"}\n{"step": 3, "train/loss": "inf"}\n')
    steps, values = curve(RunRecord(path=tmp_path, status="diverged"), "train/loss")
    assert steps == [1, 2, 3] and values[0] == 2.5
    assert math.isnan(values[1]) and values[2] == math.inf
    assert f"{values[1]:.3g}" == "nan"
