"""The GPU check (benchmarks/gpu_check.py) kept working on the CPU: its --dry mode's report, a
failing case beside a good one, and the full check's configs."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

from optbench.runner.build import build_task
from optbench.runner.config import compose
from optbench.runner.spec import resolve

_spec = importlib.util.spec_from_file_location(
    "gpu_check", Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py")
gpu_check = sys.modules["gpu_check"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(gpu_check)


def test_dry_check_reports_every_case_with_real_numbers(tmp_path, one_thread):
    assert gpu_check.main(["--dry", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert (report["mode"], report["isolation"], report["device"]["device"]) == ("dry", "in-process", "cpu")
    cases = {c["name"]: c for c in report["cases"]}
    assert list(cases) == [c.name for c in gpu_check.dry_cases()]
    for case in cases.values():
        assert (case["status"], case["run_status"], case["errors"]) == ("ok", "completed", [])
        m = case["metrics"]
        assert list(m) == list(gpu_check.METRICS)
        assert all((value is None) == (key in case["na"]) for key, value in m.items())  # null: a reason
        assert all(math.isfinite(value) for value in m.values() if value is not None)
        assert m["throughput"] > 0 and m["step_seconds"] > 0
        # the meta-device estimate is exactly the weights, gradients and states the run counted
        assert m["memory_estimate_bytes"] == m["counted_bytes"] > 0
        assert m["mfu"] is None and "CPU" in case["na"]["mfu"]
        assert m["peak_bytes"] is None and "CUDA" in case["na"]["peak_bytes"]
    lm = cases["llama_tiny/swan/eager"]
    tokens_per_step = build_task(compose(gpu_check.dry_cases()[0].command).task).work_per_step()
    m = lm["metrics"]
    assert lm["work_unit"] == "tokens" and cases["cifar10/airbench/eager"]["work_unit"] == "examples"
    assert m["throughput"] * m["step_seconds"] == pytest.approx(tokens_per_step)  # one step's tokens
    assert m["optimizer_step_seconds"] > 0 and m["matrix_step_seconds"] > 0  # SWAN routes to AdamW too
    assert m["optimizer_step_percent"] == pytest.approx(100 * m["optimizer_step_seconds"] / m["step_seconds"])
    probe = cases["llama_tiny/adamw/probe"]["metrics"]
    assert probe["probe_seconds"] > 0 and probe["probe_hvps"] >= 1 and probe["lambda_max"] > 0
    markdown = (tmp_path / "gpu_check.md").read_text()
    assert all(name in markdown for name in cases) and "## Failures" not in markdown


def test_a_failing_case_is_reported_and_the_next_one_runs(tmp_path, one_thread):
    good = next(c for c in gpu_check.dry_cases() if c.task == "cifar10")
    bad = dataclasses.replace(good, name="bad", overrides=(*good.overrides, "optimizer.lr=-1"))
    report = gpu_check.check([bad, good], tmp_path, torch.device("cpu"), mode="dry", in_process=True)
    failed, passed = report["cases"]
    assert (failed["status"], failed["run_status"]) == ("failed", None)
    [error] = failed["errors"]
    assert "Invalid learning rate" in error["message"] and "Traceback" in error["traceback"]
    assert set(failed["na"]) == set(gpu_check.METRICS) and not any(failed["metrics"].values())
    assert passed["status"] == "ok"
    assert "### bad (failed)" in (tmp_path / "gpu_check.md").read_text()


def test_cases_past_the_budget_are_skipped(tmp_path):
    report = gpu_check.check(gpu_check.dry_cases(), tmp_path, torch.device("cpu"), mode="dry",
                             in_process=True, budget_s=0)
    assert [c["status"] for c in report["cases"]] == ["skipped"] * len(gpu_check.dry_cases())


def test_full_check_needs_cuda_and_its_cases_resolve():
    if not torch.cuda.is_available():
        assert gpu_check.main([]) == 2
    for case in gpu_check.full_cases(device="cpu"):  # the spec's checks, without a GPU
        resolve(compose(case.command))
