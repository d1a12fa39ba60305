"""Checkpoints that can be trusted: a damaged checkpoint is named in one line and the run resumes
from the previous good one (or from scratch), ending bit-identical to an uninterrupted run; a
crash anywhere in a save leaves a good checkpoint in place."""

from __future__ import annotations

import collections
import os
import random
import re
from pathlib import Path

import pytest
from helpers import Interrupted, interrupt_after_checkpoint, losses, run_config, summary

from optbench.contract import RunStatus
from optbench.errors import OptbenchError
from optbench.loggers.console import console
from optbench.runner.config import compose
from optbench.runner.run_dir import RunDir
from optbench.tools.sharpness import checkpoint_spectrum

CFG = ["task=logreg", "task.batch_size=32", "logger=none", "train.steps=30", "train.log_every=3",
       "train.checkpoint_every=10"]
TIMING = ("perf/", "mem/peak_bytes")
DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "garbage": lambda data: random.Random(0).randbytes(len(data)),  # same size: only the digest tells
    "empty": lambda data: b"",
}
PROBLEM = {"truncated": "bytes where a complete checkpoint has", "garbage": "SHA-256", "empty": "empty"}


def _final(outcome):
    return {k: v for k, v in outcome.final.items() if not k.startswith(TIMING)}


@pytest.fixture(autouse=True)
def _unwrapped(monkeypatch):
    """Lines as printed, not wrapped at the terminal's width."""
    monkeypatch.setattr(console, "soft_wrap", True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("clean")
    return run_dir, _final(run_config(compose(CFG), run_dir))


def _damage(path: Path, how: str) -> None:
    path.write_bytes(DAMAGE[how](path.read_bytes()))


def _interrupted_after(run_dir: Path, step: int) -> None:
    with interrupt_after_checkpoint(step), pytest.raises(Interrupted):
        run_config(compose(CFG), run_dir)


def _rerun(run_dir: Path, capsys) -> tuple[dict, list[str], str]:
    """Run again; its final metrics, its checkpoint warnings, all it printed."""
    capsys.readouterr()
    outcome = run_config(compose(CFG), run_dir)
    printed = capsys.readouterr().err
    return _final(outcome), [line for line in printed.splitlines() if line.startswith("checkpoint:")], printed


def _assert_identical(run_dir: Path, final: dict, clean) -> None:
    clean_dir, clean_final = clean
    assert final == clean_final
    assert losses(run_dir) == losses(clean_dir)  # every logged loss, not just the last
    assert (summary(run_dir)["status"], summary(run_dir)["steps"]) == ("completed", 30)


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_checkpoint_resumes_from_the_previous_one(tmp_path, capsys, clean, how):
    run_dir = tmp_path / "run"
    _interrupted_after(run_dir, 20)
    assert summary(run_dir)["steps"] == 20
    _damage(run_dir / "checkpoint.pt", how)

    final, warnings, printed = _rerun(run_dir, capsys)
    assert len(warnings) == 1, printed
    assert str(run_dir / "checkpoint.pt") in warnings[0] and PROBLEM[how] in warnings[0]
    assert warnings[0].endswith("trying checkpoint.prev.pt")
    assert f"resuming {run_dir} from step 10" in printed
    _assert_identical(run_dir, final, clean)


@pytest.mark.parametrize("step", [10, 20])  # one checkpoint, or two
def test_without_a_good_checkpoint_the_run_starts_from_scratch(tmp_path, capsys, clean, step):
    run_dir = tmp_path / "run"
    _interrupted_after(run_dir, step)
    damaged = RunDir(run_dir).checkpoints
    assert len(damaged) == step // 10
    for path, how in zip(damaged, ["garbage", "truncated"], strict=False):
        _damage(path, how)

    final, warnings, printed = _rerun(run_dir, capsys)
    assert len(warnings) == len(damaged), printed  # one line per damaged file, newest first
    assert all(str(path) in line for path, line in zip(damaged, warnings, strict=True))
    assert warnings[-1].endswith("no good checkpoint left: starting from scratch")
    assert "resuming" not in printed
    _assert_identical(run_dir, final, clean)


# the renames of a save, in order: the new file staged, the digests recorded, the old one kept
# as the previous, the new one published
@pytest.mark.parametrize("target", ["checkpoint.next.pt", "checkpoint.sha256.json", "checkpoint.prev.pt",
                                    "checkpoint.pt"])
def test_a_crash_anywhere_in_a_save_leaves_a_good_checkpoint(tmp_path, capsys, monkeypatch, clean, target):
    """The step-20 save dies just before its rename onto ``target``: the rerun finds a good
    checkpoint without a warning, and the run dir reads as interrupted without its summary."""
    run_dir, replace, renames = tmp_path / "run", os.replace, collections.Counter()

    def crash_before_target(src, dst):
        if Path(dst) == run_dir / target:
            renames[target] += 1
            if renames[target] == (1 if target == "checkpoint.prev.pt" else 2):  # step 10 rotates nothing
                raise Interrupted
        replace(src, dst)

    with monkeypatch.context() as patch, pytest.raises(Interrupted):
        patch.setattr(os, "replace", crash_before_target)
        run_config(compose(CFG), run_dir)
    (run_dir / "summary.json").unlink()
    assert RunDir(run_dir).status() == RunStatus.INTERRUPTED

    final, warnings, printed = _rerun(run_dir, capsys)
    assert warnings == [] and re.search(f"resuming {re.escape(str(run_dir))} from step (10|20)", printed)
    _assert_identical(run_dir, final, clean)


def test_sharpness_of_a_damaged_checkpoint_is_an_error_naming_it(tmp_path):
    run_dir = tmp_path / "run"
    run_config(compose([*CFG, "train.keep_checkpoints=true"]), run_dir)
    _damage(run_dir / "checkpoint.pt", "garbage")
    with pytest.raises(OptbenchError, match=re.escape(f"{run_dir / 'checkpoint.pt'} is damaged")):
        checkpoint_spectrum(RunDir(run_dir), None, k=1, trace=False)
    # a kept checkpoint has no recorded digest: it fails to unpickle, and says so
    _damage(run_dir / "checkpoints" / "step_10.pt", "garbage")
    with pytest.raises(OptbenchError, match=re.escape(f"{run_dir / 'checkpoints' / 'step_10.pt'} cannot be read")):
        checkpoint_spectrum(RunDir(run_dir), 10, k=1, trace=False)
