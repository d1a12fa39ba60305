"""train.warm_start: a run that continues another run's checkpoint (weights, optimizer state, EMA,
data position, RNG, counters) with a fresh schedule over its remaining steps; it resumes from its
own checkpoints bit for bit, like every run."""

from __future__ import annotations

import pytest
import torch
from helpers import (
    Interrupted,
    interrupt_after_checkpoint,
    metric_lines,
    run_config,
    summary,
    untimed,
)

from optbench.errors import OptbenchError
from optbench.loggers.jsonl import read_metrics
from optbench.runner.config import compose
from optbench.runner.run_dir import RunDir

LR, SOURCE_STEPS, STEPS = 0.05, 20, 35
BASE = ["task=logreg", "task.batch_size=32", "optimizer=adam", f"optimizer.lr={LR}", "logger=none",
        "train.log_every=5", "train.eval_every=10", "train.checkpoint_every=5", "train.ema=0.9"]
# a pure cooldown from the source's last step: WSD decaying over every step it has left
COOLDOWN = [*BASE, f"train.steps={STEPS}", "train.log_every=1", "schedule=wsd", "schedule.warmup_fraction=0",
            "schedule.decay_fraction=1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The source (kept checkpoints every 5 steps) and a cooldown branch from its latest."""
    root = tmp_path_factory.mktemp("warm")
    run_config(compose([*BASE, f"train.steps={SOURCE_STEPS}", "train.keep_checkpoints=true"]), root / "source")
    run_config(compose([*COOLDOWN, f"train.warm_start.run={root / 'source'}"]), root / "cooldown")
    return root


def _assert_same_final_state(run_dir, expected_dir):
    """Weights, optimizer state (and its groups' hyperparameters) and EMA, bit for bit."""
    got, expected = (torch.load(RunDir(d).checkpoint, weights_only=False) for d in (run_dir, expected_dir))
    for key in ("model", "ema"):
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)
    torch.testing.assert_close(got["optimizer"]["state"], expected["optimizer"]["state"], rtol=0, atol=0)
    assert got["optimizer"]["param_groups"] == expected["optimizer"]["param_groups"]


def test_a_branch_from_step_n_equals_the_run_that_went_on_through_it(runs, tmp_path):
    """A: 35 steps; C: the source's step 10 (a kept checkpoint), then 25 more, with the same
    constant schedule. C's metrics, weights, optimizer state and EMA are A's, bit for bit."""
    run_config(compose([*BASE, f"train.steps={STEPS}"]), tmp_path / "A")
    run_config(compose([*BASE, f"train.steps={STEPS}", f"train.warm_start.run={runs / 'source'}",
                        "train.warm_start.step=10"]), tmp_path / "C")
    through, branch = metric_lines(tmp_path / "A"), metric_lines(tmp_path / "C")
    (at_10,) = [line for line in through if line["step"] == 10]
    assert branch[0] == {key: at_10[key] for key in branch[0]} and "eval_ema/loss" in branch[0]
    assert branch[1:] == [line for line in through if line["step"] > 10]
    _assert_same_final_state(tmp_path / "C", tmp_path / "A")
    assert (summary(tmp_path / "C")["steps"], summary(tmp_path / "C")["work"]) == (STEPS, summary(tmp_path / "A")["work"])
    assert untimed(summary(tmp_path / "C")["final"]) == untimed(summary(tmp_path / "A")["final"])
    assert summary(tmp_path / "C")["warm_start"] == {"run": str(runs / "source"), "step": 10}


def test_a_branch_gets_a_fresh_schedule_over_its_remaining_steps(runs):
    lines = read_metrics(runs / "cooldown" / "metrics.jsonl")
    remaining = STEPS - SOURCE_STEPS
    # the lr of step s: the branch's step s - 1 - 20 of a linear decay over 15 steps, from the peak
    assert [line["opt/lr"] for line in lines if "opt/lr" in line] == pytest.approx(
        [LR * (1 - (s - 1 - SOURCE_STEPS) / remaining) for s in range(SOURCE_STEPS + 1, STEPS + 1)])
    assert lines[0]["step"] == SOURCE_STEPS and lines[0]["examples"] == SOURCE_STEPS * 32
    assert summary(runs / "cooldown")["warm_start"] == {"run": str(runs / "source"), "step": SOURCE_STEPS}


def test_a_branch_averages_from_the_weights_it_starts_at_when_its_source_did_not(runs, tmp_path):
    run_config(compose([*BASE, "train.steps=10", "train.ema=null"]), tmp_path / "plain")
    run_config(compose([*BASE, f"train.steps={STEPS}", f"train.warm_start.run={tmp_path / 'plain'}"]),
               tmp_path / "branch")
    first = read_metrics(tmp_path / "branch" / "metrics.jsonl")[0]
    assert first["step"] == 10 and first["eval_ema/loss"] == first["eval/loss"]


def test_a_killed_branch_resumes_from_its_own_checkpoint_bit_identically(runs, tmp_path):
    """WSD, EMA and a warm start together: killed after its step-25 checkpoint, the branch
    resumes from it (not from the source) and ends as the undisturbed one did."""
    cfg = [*COOLDOWN, f"train.warm_start.run={runs / 'source'}"]
    with interrupt_after_checkpoint(25), pytest.raises(Interrupted):
        run_config(compose(cfg), tmp_path / "killed")
    run_config(compose(cfg), tmp_path / "killed")
    assert metric_lines(tmp_path / "killed") == metric_lines(runs / "cooldown")
    _assert_same_final_state(tmp_path / "killed", runs / "cooldown")


@pytest.mark.parametrize(("overrides", "message"), [
    ([f"train.steps={SOURCE_STEPS}"], r"train.steps=20 must exceed the step of the warm start's checkpoint \(20, "),
    (["train.steps=30", "train.warm_start.step=7"],
     r"train.warm_start.step=7: .* has no checkpoint at step 7 \(kept steps: 5, 10, 15, 20; "),
    (["train.steps=30", "optimizer=sgd"],
     r"holds a checkpoint of another optimizer \(optimizer._target_: 'torch.optim.Adam' -> 'torch.optim.SGD'\)"),
])
def test_a_source_it_cannot_continue_is_one_line(runs, tmp_path, overrides, message):
    cfg = [*BASE, f"train.warm_start.run={runs / 'source'}", *overrides]
    with pytest.raises(OptbenchError, match=message):
        run_config(compose(cfg), tmp_path / "run")


@pytest.mark.parametrize(("overrides", "message"), [
    (["train.warm_start.run=/nonexistent/run"], "train.warm_start.run=/nonexistent/run is not a directory"),
    (["train.warm_start.step=10"], "train.warm_start.step=10 needs train.warm_start.run=DIR"),
    (["train.warm_start.run=x", "train.warm_start.step=30", "train.steps=30"],
     "train.warm_start.step=30 must be a positive step below train.steps=30"),
])
def test_a_warm_start_that_names_no_checkpoint_is_one_line(tmp_path, overrides, message):
    with pytest.raises(OptbenchError, match=message):
        run_config(compose([*BASE, *overrides]), tmp_path / "run")
