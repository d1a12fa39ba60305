"""train.ema: an EMA of the weights, updated after every optimizer step and evaluated beside the
weights as eval_ema/*; refused where the weights are sharded."""

from __future__ import annotations

import pytest
import torch
from helpers import run_config

from optbench.errors import OptbenchError
from optbench.loggers.jsonl import read_metrics
from optbench.runner.build import build
from optbench.runner.config import compose
from optbench.runner.run_dir import RunDir
from optbench.runner.spec import check, resolve

BETA = 0.8
STEPS = 6
CFG = ["task=logreg", "task.batch_size=32", "optimizer=adam", "optimizer.lr=0.05", "logger=none",
       f"train.steps={STEPS}", "train.log_every=3", "train.eval_every=3", "train.checkpoint_every=1",
       "train.keep_checkpoints=true", f"train.ema={BETA}"]


@pytest.fixture(scope="module")
def averaged(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ema") / "run"
    run_config(compose(CFG), run_dir)
    return run_dir


def test_the_ema_follows_the_recurrence_over_the_weights_of_every_step(averaged):
    """ema_1 = w_1, ema_k = β·ema_(k−1) + (1 − β)·w_k, over the weights each step's checkpoint kept."""
    ema = None
    for k in range(1, STEPS + 1):
        kept = torch.load(RunDir(averaged).kept_checkpoint(k), weights_only=False)
        weights = kept["model"]["weight"].double()
        ema = weights if ema is None else BETA * ema + (1 - BETA) * weights
        torch.testing.assert_close(kept["ema"]["module.weight"].double(), ema, rtol=1e-6, atol=1e-9)
        assert kept["ema"]["n_averaged"] == k
    assert not torch.allclose(ema, weights)  # an average, not the weights


def test_every_evaluation_also_evaluates_the_average(averaged):
    evaluated = [r for r in read_metrics(averaged / "metrics.jsonl") if "eval/loss" in r]
    assert [r["step"] for r in evaluated] == [0, 3, 6]
    names = [key for key in evaluated[0] if key.startswith("eval/")]
    assert names == ["eval/loss", "eval/acc", "eval/suboptimality"]
    ema = [{key: r[key.replace("eval/", "eval_ema/")] for key in names} for r in evaluated]
    assert ema[0] == {key: evaluated[0][key] for key in names}  # step 0: the initial weights
    # the last: the task's own evaluation of the averaged weights the final checkpoint holds
    built = build(resolve(compose(CFG)))
    state = torch.load(RunDir(averaged).checkpoint, weights_only=False)["ema"]
    built.model.load_state_dict({key.removeprefix("module."): value for key, value in state.items()
                                 if key.startswith("module.")})
    with torch.no_grad():
        assert ema[-1] == built.task.evaluate(built.model)
    assert ema[-1] != {key: evaluated[-1][key] for key in names}


@pytest.mark.parametrize("beta", [0.0, 1.0, 1.5])
def test_a_decay_outside_0_1_is_refused(beta):
    with pytest.raises(OptbenchError, match=rf"train.ema={beta} must be in \(0, 1\)"):
        check(compose([f"train.ema={beta}"]))


def test_fsdp_is_refused_under_torchrun(monkeypatch):
    check(compose(["train.ema=0.9", "train.parallel=fsdp"]))  # one process: no sharding
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(OptbenchError, match="but train.ema averages whole ones; use train.parallel=ddp"):
        check(compose(["train.ema=0.9", "train.parallel=fsdp"]))
