"""The figure kinds: the registry that `optbench figure` looks a preset's kind up in, and each
kind's analysis, run on hand-written run dirs with matplotlib unimportable, then drawn."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from optbench.errors import OptbenchError
from optbench.figures import make
from optbench.figures.kinds import KINDS, kind_of
from optbench.figures.preset import FigurePreset, load, names
from optbench.sweeps.collect import RunRecord


@contextlib.contextmanager
def without_matplotlib() -> Iterator[None]:
    """Inside, importing matplotlib (or any part of it) raises ImportError, as in a fresh
    interpreter where nothing drew, even if an earlier test already imported it: what runs inside
    provably imports none of it."""
    loaded = {name: sys.modules.pop(name) for name in list(sys.modules)
              if name == "matplotlib" or name.startswith("matplotlib.")}
    sys.modules["matplotlib"] = None  # the import system's "not importable"
    try:
        yield
    finally:
        del sys.modules["matplotlib"]
        sys.modules.update(loaded)


def analyzed(name: str, records: list[RunRecord], settings: dict[str, Any] | None = None) -> Any:
    """Figure ``name``'s analysis of ``records`` (with its smoke settings unless given), without
    matplotlib; then its drawing of it, which must be a figure."""
    from matplotlib.figure import Figure
    from matplotlib.pyplot import close

    preset = load(name)
    kind = kind_of(preset)
    with without_matplotlib():
        analysis = kind.analyze(preset, records, settings or preset.settings("smoke"))
    figure = kind.draw(analysis)
    assert isinstance(figure, Figure)
    close(figure)
    return analysis


def logged_run(path: Path, metrics: list[dict[str, Any]], config: dict[str, Any],
               **fields: Any) -> RunRecord:
    """A completed run (unless ``status`` says otherwise) as a figure reads it: metrics.jsonl in
    ``path`` and the resolved config."""
    path.mkdir(parents=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in metrics))
    return RunRecord(path=path, config=config, **{"status": "completed", **fields})


def test_every_preset_names_a_registered_kind() -> None:
    assert {load(name).kind for name in names()} == set(KINDS)


def test_an_unknown_kind_is_one_line_naming_the_accepted_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    preset = FigurePreset(name="typo", title="t", paper="p", claim="c", kind="eso")
    monkeypatch.setattr(make, "load", lambda name: preset)
    with pytest.raises(OptbenchError) as raised:
        make.make("typo", "smoke", tmp_path)
    assert str(raised.value) == ("figure 'typo': kind 'eso' is not a figure kind; accepted: "
                                 "adam_eos, eos, heavy_tail, matrix_sensing, memory, swan_vs_adam")


def test_importing_the_kinds_loads_no_plotting_or_data_frames() -> None:
    code = ("import sys, optbench.figures.make, optbench.figures.kinds; "
            "print(sorted({m.split('.')[0] for m in sys.modules} "
            "& {'matplotlib', 'pandas', 'scipy'}))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[]"


@pytest.mark.parametrize(("name", "sharpness", "factor"), [
    ("eos", "sharpness/lambda_max", 2), ("adam-eos", "sharpness/preconditioned", 38)])
def test_edge_of_stability_analysis(tmp_path: Path, name: str, sharpness: str, factor: int) -> None:
    shares = [0.5, 0.8, 0.95, 1.0, 1.02, 0.99]  # of the threshold; the late 30%: 1.02, 0.99
    records = [logged_run(tmp_path / str(lr),
                          [{"step": 10 * i, sharpness: share * factor / lr,
                            "sharpness/threshold": factor / lr, "train/loss": 1 / (i + 1)}
                           for i, share in enumerate(shares)],
                          {"optimizer": {"lr": lr}, "task": {"loss": "mse"}}, optimizer="sgd")
               for lr in (0.2, 0.1)]
    analysis = analyzed(name, records)  # late: 0.3, tolerance: 0.15
    assert analysis.verdict.held and analysis.loss_name == "square loss"
    assert [found.lr for found in analysis.runs] == [0.1, 0.2]
    for found in analysis.verdict.numbers["runs"].values():
        assert found["ratio"] == pytest.approx(1.005) and found["window_steps"] == [40, 50]
        assert found["rule"] == f"{factor}/η"
    assert list(analysis.data.columns) == ["optimizer", "lr", "step", sharpness,
                                           "sharpness/threshold", "train/loss"]
    assert len(analysis.data) == 12


def test_matrix_sensing_analysis(tmp_path: Path) -> None:
    def errors(parameterization: str, k: int, alpha: float, error) -> RunRecord:
        return logged_run(tmp_path / f"{parameterization}-{k}-{alpha}",
                          [{"step": t, "eval/recovery_error": error(t)} for t in range(401)],
                          {"task": {"parameterization": parameterization, "k": k, "r": 2,
                                    "init_scale": alpha}})

    records = [errors("symmetric", 2, 0.1, lambda t: 0.4 ** t),  # linear: rate −ln 0.4
               errors("symmetric", 4, 0.1, lambda t: 1 / (1 + t)),  # 1/T
               errors("asymmetric", 2, 0.1, lambda t: 0.4 ** t),
               *(errors("asymmetric", 4, alpha, lambda t, a=alpha: math.exp(-10 * a ** 2 * t))
                 for alpha in (0.1, 0.2)),  # linear at a rate ∝ α²
               RunRecord(path=None, status="failed", reason="boom", job=5, overrides=["task.k=8"])]
    analysis = analyzed("matrix-sensing", records)
    numbers = analysis.verdict.numbers
    assert analysis.verdict.held
    assert numbers["exact_rank"]["rate_min"] == pytest.approx(-math.log(0.4))
    assert -1.05 < numbers["over_parameterized"]["loglog_slope_min"] < -0.95
    assert numbers["asymmetric"]["rate_vs_alpha_exponent"] == pytest.approx(2)
    assert "left out: job 5 (task.k=8) is failed: boom" in analysis.verdict.lines
    assert set(analysis.data["panel"]) == {"a", "b", "c", "d"}
    rates = analysis.data[analysis.data["curve"] == "rate"]
    assert len(rates) == 4  # both k = r, both asymmetric k > r


def test_swan_vs_adam_analysis(tmp_path: Path) -> None:
    def evals(optimizer: str, losses: list[float]) -> RunRecord:
        return logged_run(tmp_path / optimizer,
                          [{"step": 10 * i, "tokens": 100 * i, "eval/loss": loss,
                            "eval/optimal_loss": 2.0} for i, loss in enumerate(losses)],
                          {"optimizer": {"lr": 1e-3}}, task="llama_tiny",
                          overrides=[f"optimizer={optimizer}"])

    records = [evals("adamw", [6.0, 4.0, 3.0]), evals("swan", [6.0, 3.0, 2.5]),
               RunRecord(path=None, status="pending", overrides=["optimizer=muon"])]
    analysis = analyzed("swan-vs-adam", records)
    assert analysis.verdict.held
    assert analysis.verdict.numbers["token_ratio"] == pytest.approx(0.5)
    assert analysis.reached == {"adamw": 200, "swan": 100}  # adamw's final loss, 3.0
    assert "muon: no eval curve (pending)" in analysis.verdict.lines
    assert analysis.title == "llama_tiny" and analysis.optimum == 2.0
    assert len(analysis.data) == 6


def test_memory_analysis() -> None:
    settings = {"precision": "bf16", "sizes": ["llama60m"],
                "optimizers": ["adamw", "galore", "swan"],
                "overrides": {"galore": {"llama60m": ["optimizer.rank=128"]}}}
    analysis = analyzed("memory", [], settings)
    assert analysis.verdict.held
    states = analysis.verdict.numbers["llama60m"]
    assert states["swan"] < states["galore"] < states["adamw"]
    assert list(analysis.data["optimizer"]) == ["adamw", "galore", "swan"]


def test_heavy_tail_analysis(tmp_path: Path) -> None:
    task = {"_target_": "optbench.tasks.heavy_tail.HeavyTail", "classes": 7, "top": 8,
            "frequencies": "dyadic", "groups": 3}  # 24 examples; groups: class 1, 2–3, 4–7
    start = math.log(7)

    def losses(optimizer: str, lr: float, rare_end: float, **fields: Any) -> RunRecord:
        """Loss falling linearly over 10 steps, in the rarest group to ``rare_end`` × log c."""
        curve = [{"step": t, "eval/loss": start * (1 - 0.05 * t),
                  "eval/loss_group_0": start * (1 - 0.09 * t),
                  "eval/loss_group_1": start * (1 - 0.05 * t),
                  "eval/loss_group_2": start * (1 - (1 - rare_end) * t / 10)} for t in range(11)]
        return logged_run(tmp_path / f"{optimizer}-{lr}", curve,
                          {"task": task, "optimizer": {"lr": lr}}, optimizer=optimizer, **fields)

    records = [losses("sgd", 0.1, 0.9), losses("sgd", 1.0, 0.9, status="diverged"),
               losses("adam", 0.01, 0.1), losses("signsgd", 0.001, 0.05)]
    analysis = analyzed("heavy-tail", records)
    numbers = analysis.verdict.numbers
    assert analysis.verdict.held and numbers["rarest_group"] == "classes 4–7"
    assert numbers["sgd"]["lr_grid"]["1"] is None and numbers["sgd"]["lr_at_grid_edge"]
    assert numbers["sgd"]["rare_ratio"] == pytest.approx(0.9)
    assert numbers["gd_share"]["adam"] == pytest.approx(0.1 / 0.9)
    assert analysis.lrs == {"sgd": 0.1, "adam": 0.01, "signsgd": 0.001}
    assert analysis.examples == 24 and set(analysis.data["group"]) == {"all", "0", "1", "2"}
