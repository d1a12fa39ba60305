"""LLaMA pre-training through the real CLI."""

from __future__ import annotations

import pytest
from helpers import optbench, optbench_in_process, summary

from optbench.loggers.jsonl import read_metrics


@pytest.mark.slow
def test_llama_tiny_approaches_the_synthetic_optimum(tmp_path):
    run_dir = tmp_path / "D"
    # a process of its own (its threads to itself); evaluated at the start and the end only
    optbench("run", "task=llama_tiny", "optimizer=adamw", "data=synthetic", "train.steps=300",
             "train.eval_every=300", "logger=none", f"hydra.run.dir={run_dir}")
    final = summary(run_dir)["final"]
    assert final["eval/loss"] < 1.05 * final["eval/optimal_loss"]
    records = read_metrics(run_dir / "metrics.jsonl")
    # tokens are next-token targets: 16 full rows of 64 tokens hold 16 x 63 a step
    assert records[-1]["tokens"] == 300 * 16 * 63
    assert "perf/tokens_per_second" in records[-1] and "perf/mfu" not in records[-1]  # no GPU


def test_token_budget_sets_the_steps(tmp_path):
    run_dir = tmp_path / "D"
    ran = optbench_in_process("run", "task=llama_tiny", "train.tokens=5000", "train.eval_every=1000",
                              "task.eval_tokens=500", "logger=none", f"hydra.run.dir={run_dir}")
    assert ran.returncode == 0, ran.stderr
    assert summary(run_dir)["steps"] == 5  # ceil(5000 / 1008): 16 x 63 targets a step


def test_paper_sizes_default_to_the_galore_recipe():
    shown = optbench_in_process("show", "task=llama350m", "--resolve").stdout
    assert "steps: 60000" in shown and "precision: bf16" in shown
    assert "WarmupCosine" in shown and "source: c4" in shown
