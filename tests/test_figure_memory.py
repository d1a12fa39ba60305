"""`optbench figure memory`: the bars are `optbench memory`'s numbers, and the claim is judged."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from helpers import made_figure, optbench_in_process


def _memory_command(*overrides: str) -> dict[str, int]:
    result = optbench_in_process("memory", *overrides)  # no training: in this process
    assert result.returncode == 0, result.stderr
    table = result.stdout
    return {part: int(re.search(rf"{label}\s*│\s*([\d,]+)", table).group(1).replace(",", ""))
            for part, label in (("weights", "weights"), ("gradients", "gradients"),
                                ("optimizer_states", "optimizer states"))}


def test_memory_figure_equals_optbench_memory_and_judges_the_claim(tmp_path: Path) -> None:
    out, _, verdict = made_figure("memory", tmp_path)
    data = pd.read_csv(out / "memory.csv")
    assert len(data) == 5 * 5  # sizes × optimizers at smoke scale
    for task, optimizer, extra in [("llama60m", "galore", ["optimizer.rank=128"]), ("llama1b", "swan", []),
                                   ("llama7b", "adamw", [])]:
        row = data[(data["task"] == task) & (data["optimizer"] == optimizer)].iloc[0]
        counted = _memory_command(f"task={task}", f"optimizer={optimizer}", "precision=bf16", *extra)
        assert {part: int(row[part]) for part in counted} == counted
    for size, states in verdict["numbers"].items():
        assert states["swan"] < states["galore"] < states["adamw"], size


def test_figure_list_and_unknown_names(tmp_path: Path) -> None:
    listed = optbench_in_process("figure", "--list").stdout
    assert "memory" in listed and "GaLore" in listed
    wrong = optbench_in_process("figure", "nope")
    assert wrong.returncode == 2 and "no figure named 'nope'; available:" in wrong.stderr
    scale = optbench_in_process("figure", "memory", "--scale", "huge")
    assert scale.returncode == 2 and "huge" in scale.stderr
