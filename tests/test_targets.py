"""Time to target (target.*): where a metric first meets a value, as summary.json records it,
recomputed from metrics.jsonl by hand; target.stop ends the run there; a resumed run records the
same crossing; a target changes no run's identity unless it stops the run."""

from __future__ import annotations

import pytest
from helpers import Interrupted, interrupt_after_checkpoint, metric_lines, run_config, summary
from omegaconf import OmegaConf

from optbench.errors import OptbenchError
from optbench.loggers.jsonl import read_metrics
from optbench.runner.config import compose
from optbench.runner.identity import run_id
from optbench.runner.spec import check

CADENCE = ["logger=none", "train.steps=30", "train.log_every=2", "train.eval_every=4", "train.checkpoint_every=2"]
# heavy_tail with d=20, c=10 counts 4·d·c = 800 training FLOPs per example
HEAVY_TAIL = ["task=heavy_tail", "task.classes=10", "task.top=10", "task.d=20", "task.groups=2",
              "optimizer.lr=0.5", *CADENCE, "target.metric=eval/loss", "target.value=1.6"]
LOGREG = ["task=logreg", "task.batch_size=32", *CADENCE, "target.metric=eval/acc", "target.value=0.96",
          "target.mode=max"]
CASES = {"heavy_tail-loss-min": (HEAVY_TAIL, "examples", 800.0), "logreg-acc-max": (LOGREG, "examples", None)}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Each case run to its end, without stopping at the target."""
    root = tmp_path_factory.mktemp("targets")
    for name, (cfg, _, _) in CASES.items():
        run_config(compose(cfg), root / name)
    return root


def _by_hand(lines, metric, value, mode, work):
    """Where ``metric`` first meets ``value``, interpolated between the logged values around it."""
    points = [line for line in lines if metric in line]
    sign = 1 if mode == "min" else -1
    i = next(i for i, line in enumerate(points) if sign * line[metric] <= sign * value)
    before, after = points[i - 1], points[i]
    share = (value - before[metric]) / (after[metric] - before[metric])
    return {key: before[line_key] + share * (after[line_key] - before[line_key])
            for key, line_key in (("step", "step"), ("work", work), ("seconds", "perf/train_seconds"))}


@pytest.mark.parametrize("case", CASES)
def test_the_recorded_crossing_is_the_one_metrics_jsonl_shows(finished, case):
    cfg, work, flops_per_example = CASES[case]
    target = OmegaConf.to_container(compose(cfg).target)
    lines = read_metrics(finished / case / "metrics.jsonl")
    expected = _by_hand(lines, target["metric"], target["value"], target["mode"], work)
    recorded = summary(finished / case)["target"]
    assert recorded == {"metric": target["metric"], "value": target["value"], "mode": target["mode"],
                        "reached": True, **expected, "evaluated_step": int(expected["step"] // 4 + 1) * 4,
                        "flops": flops_per_example and flops_per_example * expected["work"]}
    assert 0 < recorded["step"] < recorded["evaluated_step"] < 30


def test_stop_ends_the_run_completed_at_the_evaluation_that_met_it(finished, tmp_path):
    run_config(compose([*HEAVY_TAIL, "target.stop=true"]), tmp_path / "stopped")
    full, stopped = summary(finished / "heavy_tail-loss-min"), summary(tmp_path / "stopped")
    at = full["target"]["evaluated_step"]
    assert stopped["status"] == "completed" and stopped["steps"] == at
    assert metric_lines(tmp_path / "stopped") == [r for r in metric_lines(finished / "heavy_tail-loss-min")
                                                   if r["step"] <= at]
    untimed = ("seconds",)
    assert {k: v for k, v in stopped["target"].items() if k not in untimed} == \
        {k: v for k, v in full["target"].items() if k not in untimed}


def test_a_resumed_run_records_the_same_crossing(finished, tmp_path):
    """Killed at a checkpoint between the last evaluation that missed the target and the first
    that met it: the resumed run still interpolates from the one that missed."""
    full = summary(finished / "heavy_tail-loss-min")["target"]
    with interrupt_after_checkpoint(full["evaluated_step"] - 2), pytest.raises(Interrupted):
        run_config(compose(HEAVY_TAIL), tmp_path / "run")
    run_config(compose(HEAVY_TAIL), tmp_path / "run")
    resumed = summary(tmp_path / "run")["target"]
    assert {k: v for k, v in resumed.items() if k != "seconds"} == {k: v for k, v in full.items() if k != "seconds"}


def test_a_metric_the_run_never_logs_is_refused_at_its_first_evaluation(tmp_path):
    with pytest.raises(OptbenchError, match=r"^target.metric=eval/ppl is not a metric this run logs; it logs: "
                                            r"eval/loss, eval/acc, eval/suboptimality, train/loss$"):
        run_config(compose([*LOGREG, "target.metric=eval/ppl"]), tmp_path / "run")


@pytest.mark.parametrize(("overrides", "message"), [
    (["target.metric=eval/loss"], "target.metric and target.value go together: set both"),
    (["target.value=0.5"], "target.metric and target.value go together: set both"),
    (["target.stop=true"], "target.stop=true needs a target"),
    (["target.metric=eval/loss", "target.value=-inf"], "target.value=-inf must be a finite number"),
])
def test_an_incomplete_target_is_refused(overrides, message):
    with pytest.raises(OptbenchError, match=message):
        check(compose(overrides))


def test_a_target_changes_the_run_id_only_when_it_stops_the_run(finished):
    def identity(*overrides):
        return run_id(OmegaConf.to_container(compose([*LOGREG, *overrides]), resolve=True))

    assert identity() == identity("target.value=0.9") == identity("target.metric=null", "target.value=null")
    assert identity("target.stop=true") != identity("target.stop=true", "target.value=0.9")
    assert identity() != identity("target.stop=true")
    # the finished run is reported, not recomputed, under another target
    assert run_config(compose([*LOGREG, "target.value=0.9"]), finished / "logreg-acc-max") is None
