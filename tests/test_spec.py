"""The run spec: resolve() checks a config and turns a token budget into steps, and leaves the
config it was given as it was; build() makes the run from the spec alone."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from optbench.contract import RunStatus, Summary
from optbench.errors import OptbenchError
from optbench.runner.build import build
from optbench.runner.config import compose
from optbench.runner.identity import run_id
from optbench.runner.run_dir import RunDir
from optbench.runner.spec import resolve

TINY_LM = ["task=llama_tiny", "task.hidden=32", "task.intermediate=64", "task.heads=2", "task.layers=1",
           "task.seq_len=16", "task.sequences_per_step=8", "task.micro_batch=4", "logger=none"]


def test_a_token_budget_becomes_steps_in_the_spec_only():
    # tokens are next-token targets: 8 sequences × (16 - 1) = 120 a step (not the 128 slots)
    cfg = compose([*TINY_LM, "train.tokens=1000"])
    spec = resolve(cfg, task="llama_tiny", optimizer="sgd")
    assert spec.config.train.steps == 9 == -(-1000 // 120)
    assert cfg.train.steps == 1000  # the composed config keeps its own value
    assert spec.resolved["train"]["steps"] == 9
    # the run is filed under the config as composed, as the run store names it
    assert spec.run_id == run_id(OmegaConf.to_container(cfg, resolve=True))


def test_a_token_budget_needs_a_fixed_number_of_targets_per_step():
    text = [*TINY_LM, "data=files", "task.data.train_files=a.txt", "task.data.val_files=b.txt"]
    with pytest.raises(OptbenchError, match=r"\(LLaMA text: task.data.pack=true\); set train.steps"):
        resolve(compose([*text, "train.tokens=1000"]))  # unpacked documents: targets vary by step
    packed = resolve(compose([*text, "task.data.pack=true", "train.tokens=1000"]))
    assert packed.config.train.steps == 9 == -(-1000 // (8 * 15))  # full rows, as synthetic


def test_resolve_names_the_mistake():
    with pytest.raises(OptbenchError, match="train.log_every=0 must be a positive integer"):
        resolve(compose(["train.log_every=0"]))
    with pytest.raises(OptbenchError, match="train.tokens needs a task with a fixed number of tokens"):
        resolve(compose(["task=logreg", "train.tokens=1000"]))


def test_build_makes_the_run_of_the_spec_on_its_device():
    spec = resolve(compose(["task=logreg", "task.data=synthetic", "task.d=6", "optimizer=adam",
                            "optimizer.lr=0.01", "diagnostics=sharpness"]))
    built = build(spec)
    assert built.parallel is built.model  # one process
    assert built.optimizer.param_groups[0]["lr"] == 0.01
    assert built.probe is not None and built.probe.due(0)
    assert next(built.model.parameters()).device == spec.device == torch.device("cpu")
    meta = build(spec, meta_dtype=torch.bfloat16)
    assert all(p.is_meta and p.dtype == torch.bfloat16 for p in meta.model.parameters())


def test_summary_round_trips_and_an_unreadable_one_reads_as_none(tmp_path):
    run_dir = RunDir(tmp_path)
    summary = Summary(RunStatus.DIVERGED, run_id="abc", steps=3, reason="train/loss is nan at step 3",
                      final={"train/loss": 1.5})
    run_dir.write_summary(summary)
    assert run_dir.read_summary() == summary and run_dir.status() == RunStatus.DIVERGED
    run_dir.summary.write_text('{"status": "no such status"}')
    assert run_dir.read_summary() is None
