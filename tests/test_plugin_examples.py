"""README's "Adding a plugin": its task and optimizer, as printed there, run through optbench."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from helpers import optbench

README = Path(__file__).resolve().parents[1] / "README.md"
# a file of the example: "`PATH`:", a blank line, then a fenced block holding the file
EXAMPLE = re.compile(r"^`([\w/.]+)`:\n\n```\w+\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _examples() -> dict[str, str]:
    section = README.read_text().split("## Adding a plugin", 1)[1].split("\n## ", 1)[0]
    return dict(EXAMPLE.findall(section))


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for path, text in _examples().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_the_examples_are_complete_and_short():
    examples = _examples()
    assert set(examples) == {"my_plugins/least_squares.py", "my_configs/task/least_squares.yaml",
                             "my_plugins/nsgd.py", "my_configs/optimizer/nsgd.yaml"}
    for path in ("my_plugins/least_squares.py", "my_plugins/nsgd.py"):
        assert len(examples[path].splitlines()) < 40, path


def test_every_step_of_the_example_optimizer_has_length_lr(plugin_dir):
    from my_plugins.nsgd import NormalizedSGD

    w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    optimizer = NormalizedSGD([w], lr=0.5, momentum=0.9)
    for _ in range(3):
        before = w.detach().clone()
        w.grad = 2 * w.detach()  # the gradient of |w|²
        optimizer.step()
        assert torch.linalg.vector_norm(w.detach() - before).item() == pytest.approx(0.5)


def test_the_example_plugins_train_to_the_least_squares_optimum(plugin_dir):
    from my_plugins.least_squares import LeastSquares

    task = LeastSquares()
    task.prepare(torch.device("cpu"), torch.float64)
    x, y = task.batch
    optimum = 0.5 * (x @ torch.linalg.lstsq(x, y).solution - y).pow(2).mean().item()

    # the README's command, shortened to a learning rate that decays
    optbench("run", f"hydra.searchpath=[file://{plugin_dir / 'my_configs'}]", "task=least_squares",
             "optimizer=nsgd", "optimizer.lr=0.05", "schedule=linear", "train.steps=400", "logger=none",
             f"hydra.run.dir={plugin_dir / 'run'}", cwd=plugin_dir)  # `python -m` imports from cwd
    summary = json.loads((plugin_dir / "run" / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["final"]["eval/loss"] == pytest.approx(optimum, rel=1e-3)
