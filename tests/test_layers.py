"""The layers point one way (pyproject.toml's import-linter contract, docs/architecture.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """lint-imports over the package found first under ``root``, with the contracts of its pyproject."""
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)}, timeout=120, check=False)


def test_the_layers_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout
    assert "1 kept, 0 broken" in result.stdout


def test_a_runner_module_importing_the_sweeps_breaks_them(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "optbench", tmp_path / "optbench", ignore=shutil.ignore_patterns("__pycache__"))
    execute = tmp_path / "optbench" / "runner" / "execute.py"
    execute.write_text(execute.read_text() + "\nfrom optbench.sweeps import store  # noqa: E402\n")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1
    assert "optbench.runner.execute -> optbench.sweeps.store" in result.stdout
