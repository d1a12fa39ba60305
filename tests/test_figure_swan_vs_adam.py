"""`optbench figure swan-vs-adam`: the smoke scale end to end through the CLI, and the verdict's
token arithmetic on hand-made curves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from helpers import made_figure, optbench_in_process

from optbench.figures.swan_vs_adam import judge, learned, tokens_to_reach


def point(tokens: float, loss: float, optimal: float = 2.0, optimizer: str = "adamw") -> dict:
    return {"optimizer": optimizer, "label": optimizer, "lr": 1e-3, "step": int(tokens), "tokens": tokens,
            "eval_loss": loss, "eval_ppl": math.exp(loss), "optimal_loss": optimal, "status": "completed"}


def test_tokens_to_reach_interpolates_in_loss_between_evals() -> None:
    curve = [point(0, 6.0), point(100, 4.0), point(200, 3.0)]
    assert tokens_to_reach(curve, 3.5) == pytest.approx(150)
    assert tokens_to_reach(curve, 4.0) == 100  # reached exactly at an eval
    assert tokens_to_reach(curve, 2.9) is None
    assert tokens_to_reach([point(0, 6.0), point(100, math.nan), point(200, 3.0)], 3.0) == 200


def test_learned_is_the_fraction_of_the_gap_to_the_optimum_closed() -> None:
    assert learned([point(0, 6.0), point(100, 3.0)]) == pytest.approx(0.75)  # (6 - 3) / (6 - 2)
    assert learned([point(0, 6.0, math.nan), point(100, 3.0, math.nan)]) == pytest.approx(0.5)  # no optimum: 0
    assert learned([point(0, 6.0), point(100, math.inf)]) is None  # diverged: did not learn


def test_verdict_ratio_and_held() -> None:
    curves = {"adamw": [point(0, 6.0), point(100, 4.0), point(200, 3.0)],
              "swan": [point(0, 6.0, optimizer="swan"), point(100, 3.0, optimizer="swan"),
                       point(200, 2.5, optimizer="swan")],
              "muon": [point(0, 6.0, optimizer="muon"), point(200, 5.5, optimizer="muon")]}
    verdict = judge(curves, list(curves), "adamw", 3.0, "swan",
                    {"learned_fraction": 0.6, "max_token_ratio": None}, [])
    assert verdict.held
    assert verdict.numbers["token_ratio"] == pytest.approx(0.5)
    assert verdict.numbers["optimizers"]["muon"]["tokens_to_target"] is None
    assert any("muon" in line and "does not reach" in line for line in verdict.lines)
    strict = judge(curves, list(curves), "adamw", 3.0, "swan", {"learned_fraction": 0.6, "max_token_ratio": 0.4}, [])
    assert not strict.held  # 0.5 > 0.4
    stalled = {**curves, "swan": [point(0, 6.0, optimizer="swan"), point(200, 5.0, optimizer="swan")]}
    assert not judge(stalled, list(stalled), "adamw", 3.0, "swan", {"learned_fraction": 0.6}, []).held


@pytest.mark.slow
def test_smoke_figure_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, _, verdict = made_figure("swan-vs-adam", tmp_path, "--scale", "smoke")
    data = pd.read_csv(out / "swan-vs-adam.csv")
    assert {"optimizer", "tokens", "eval_ppl", "eval_loss", "step", "lr"} <= set(data.columns)
    assert set(data["optimizer"]) == {"adamw", "swan", "galore", "muon"}
    for _, curve in data.groupby("optimizer"):
        assert curve["tokens"].iloc[0] == 0 and curve["tokens"].is_monotonic_increasing
        assert curve["tokens"].iloc[-1] == 100 * 16 * 63  # train.steps × targets per step
        assert len(curve) == 11  # step 0, then every 10 steps

    assert verdict["held"] is True
    numbers = verdict["numbers"]
    for name in ("adamw", "swan"):
        found = numbers["optimizers"][name]
        assert found["status"] == "completed"
        gap = found["initial_loss"] - found["optimal_loss"]
        assert found["initial_loss"] - found["final_loss"] >= numbers["learned_fraction"] * gap
        assert found["learns"] is True
    adamw = numbers["optimizers"]["adamw"]
    assert 0 < adamw["token_ratio"] <= 1  # its own first crossing of its final ppl
    assert numbers["token_ratio"] is None or numbers["token_ratio"] > 0  # reported, not judged at smoke
    assert any(line.startswith("swan") for line in verdict["lines"])

    # made again from the same run store, in this interpreter and with the jobs in it (run ids do
    # not depend on the launcher): what each job prints is then this command's own output
    monkeypatch.chdir(tmp_path)
    again = optbench_in_process("figure", "swan-vs-adam", "--scale", "smoke", "--out", str(out),
                                "hydra/launcher=basic")
    assert again.returncode == 0, again.stdout
    assert again.stderr.count("already completed, not recomputed") == 4  # the store: nothing retrained
    assert json.loads((out / "verdict.json").read_text())["numbers"] == numbers
    assert "verdict at --scale smoke: held" in again.stdout


def test_tuned_variant_tunes_each_optimizer_with_the_same_budget_then_draws_the_winners(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from optbench.figures import make as make_module
    from optbench.figures.preset import load
    from optbench.sweeps.tune_record import read_tune

    shipped = load("swan-vs-adam-tuned")
    smoke = shipped.scales["smoke"]["tune"]
    assert smoke["budget"] >= 2 and smoke["optimizers"] == shipped.params["optimizers"]
    # the shipped preset, on a budget a test can afford: 2 optimizers, 1 trial each, 10 steps
    tiny = {**smoke, "optimizers": ["adamw", "swan"], "budget": 1,
            "overrides": [o for o in smoke["overrides"] if not o.startswith(("train.steps", "hydra/launcher"))]
            + ["train.steps=10", f"store={tmp_path / 'store'}"]}
    shipped.scales["smoke"]["tune"] = tiny
    shipped.params["optimizers"] = ["adamw", "swan"]
    monkeypatch.setattr(make_module, "load", lambda name: shipped)
    monkeypatch.chdir(tmp_path)

    made = make_module.make("swan-vs-adam-tuned", "smoke", tmp_path / "out")

    record = read_tune(tmp_path / "out" / "tune-smoke")
    assert record.budget == 1 and set(record.tasks["llama_tiny"].optimizers) == {"adamw", "swan"}
    curves = pd.read_csv(tmp_path / "out" / "swan-vs-adam-tuned.csv")
    assert set(curves["optimizer"]) == {"adamw", "swan"}  # the winners' runs, drawn
    assert (tmp_path / "presets" / "tuned" / "llama_tiny" / "swan.yaml").is_file()
    assert made.verdict.lines
