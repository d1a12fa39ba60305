"""A compiled training step has no double backward: optimizers that differentiate through the
gradient (AdaHessian, Sophia-H) are refused with ``train.compile=true`` before the run starts."""

from __future__ import annotations

import pytest

from optbench.errors import OptbenchError
from optbench.runner.config import compose
from optbench.runner.spec import check
from tests.helpers import optbench_in_process

REFUSAL = ("error: train.compile=true cannot run this optimizer: it differentiates through the "
           "gradient (AdaHessian, Sophia-H), and a compiled backward has no double backward; "
           "set train.compile=false")


@pytest.mark.parametrize("name", ["adahessian", "sophiah"])
def test_compile_with_an_optimizer_that_needs_create_graph_is_refused(name: str) -> None:
    args = ["optimizer=zoo", f"optimizer.name={name}"]
    check(compose(args))  # fine without compile
    check(compose(["train.compile=true"]))  # and compile is fine with first-order optimizers
    with pytest.raises(OptbenchError) as refused:
        check(compose([*args, "train.compile=true"]))
    assert f"error: {refused.value}" == REFUSAL


def test_the_refusal_is_one_line_and_exit_2(tmp_path) -> None:
    result = optbench_in_process("run", "optimizer=zoo", "optimizer.name=adahessian",
                                 "train.compile=true", "train.steps=2", "logger=none",
                                 f"hydra.run.dir={tmp_path / 'D'}")
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [REFUSAL]
    assert not (tmp_path / "D").exists()
