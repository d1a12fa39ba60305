"""A run starts fast: it imports only what it uses, reads the default data set without
scikit-learn, and pauses the garbage collector during start-up only
(benchmarks/run_startup.py times it)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

import numpy as np
import torch
from typer.testing import CliRunner

from optbench.cli import app
from optbench.tasks.logreg import LogisticRegression, _breast_cancer

# what a 1-step logreg run with logger=none needs none of
HEAVY = {"sklearn", "scipy", "pandas", "pyarrow", "narwhals", "matplotlib", "pytorch_optimizer", "wandb",
         "optuna", "submitit", "datasets", "transformers"}

RUN_AND_REPORT = """
import gc, json, sys
from optbench.cli import app
try:
    app(["run", "task=logreg", "train.steps=1", "logger=none", "hydra.run.dir=" + sys.argv[1]])
except SystemExit as exit:
    assert not exit.code, exit.code
print(json.dumps({"modules": sorted({name.split(".")[0] for name in sys.modules}),
                  "collecting": gc.isenabled()}))
"""


def test_breast_cancer_is_bit_identical_to_scikit_learns_loader():
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    ours_x, ours_y = _breast_cancer()
    assert ours_x.shape == (569, 30) and ours_x.tobytes() == ((x - x.mean(0)) / x.std(0)).tobytes()
    np.testing.assert_array_equal(ours_y, np.where(y == 1, 1.0, -1.0))


def test_a_default_run_imports_no_heavy_library(tmp_path):
    # f* cached first, as after a run's first time: computing it is what needs scipy
    LogisticRegression().prepare(torch.device("cpu"), torch.float64)
    result = subprocess.run([sys.executable, "-c", RUN_AND_REPORT, str(tmp_path / "D")],
                            capture_output=True, text=True, timeout=300, check=True)

    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(HEAVY & set(report["modules"])) == []
    assert report["collecting"]  # the collector is back on for training
    assert json.loads((tmp_path / "D" / "summary.json").read_text())["status"] == "completed"


def test_a_refused_run_leaves_the_collector_on_and_nothing_frozen(tmp_path):
    frozen = gc.get_freeze_count()
    result = CliRunner().invoke(app, ["run", "train.steps=0", f"hydra.run.dir={tmp_path / 'D'}"])

    assert result.exit_code == 2 and "train.steps=0" in result.stderr
    # nothing newly frozen (frozen objects an earlier in-process run left may have been freed since)
    assert gc.isenabled() and gc.get_freeze_count() <= frozen
