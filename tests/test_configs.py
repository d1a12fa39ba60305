"""Every config composes and builds; the catalog and `show` describe them."""

from __future__ import annotations

import itertools

import pytest
import yaml
from helpers import optbench

from optbench.catalog import GROUPS, entries
from optbench.runner.config import compose, config_dir
from optbench.runner.spec import resolve


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


# every task with every optimizer, and every schedule and logger with some of them
COMBINATIONS = [
    *itertools.product(_names("task"), _names("optimizer"), ["constant"], ["none"]),
    *itertools.product(["logreg"], ["adamw"], _names("schedule"), _names("logger")),
]


@pytest.mark.parametrize("task, optimizer, schedule, logger", COMBINATIONS)
def test_every_combination_composes_and_builds(task, optimizer, schedule, logger):
    cfg = compose([f"task={task}", f"optimizer={optimizer}", f"schedule={schedule}", f"logger={logger}"])
    assert resolve(cfg).device.type == "cpu"


@pytest.mark.parametrize("group", GROUPS.values())
def test_every_config_file_starts_with_a_description(group):
    for entry in entries(group):
        assert entry.description, f"configs/{group}/{entry.name}.yaml has no '# description' line"


def test_list_shows_every_optimizer_with_its_settings():
    table = optbench("list", "optimizers").stdout
    for name in _names("optimizer"):
        assert f"│ {name} " in table
    assert "lr=0.1" in table  # sgd's default


def test_show_prints_the_composed_config_as_yaml():
    shown = yaml.safe_load(optbench("show", "task=matrix_sensing", "task.k=4", "seed=7").stdout)
    assert shown["task"]["k"] == 4 and shown["seed"] == 7
    assert shown["task"]["_target_"] == "optbench.tasks.matrix_sensing.MatrixSensing"
    assert "hydra" not in shown
