"""The command line stays fast: `--help` loads no heavy library."""

from __future__ import annotations

import subprocess
import sys

from helpers import optbench


def test_help_imports_no_heavy_library():
    code = ("import sys; from optbench.cli import app; "
            "heavy = {'torch', 'hydra', 'wandb', 'omegaconf', 'scipy', 'sklearn', 'numpy'}; "
            "print(sorted(heavy & set(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_help_lists_the_commands():
    text = optbench("--help").stdout
    for command in ("run", "show", "list", "runs"):
        assert f"│ {command} " in text
    assert "--multirun" in optbench("run", "--help").stdout


def test_hydra_flags_pass_through():
    shown = optbench("run", "optimizer=adam", "--cfg", "job").stdout
    assert "_target_: torch.optim.Adam" in shown
