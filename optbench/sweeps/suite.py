"""Suites: ``configs/suite/<name>.yaml``, a set of tasks that ``optbench tune --suite NAME`` tunes
every optimizer on, read as data (like the figure presets).

Keys: ``optimizers``, ``protocol``, ``budget``, ``seeds``, ``final_seeds`` (the command line's
options win over them), ``overrides`` (every run of the suite) and ``tasks``: a mapping from a
task's name in the suite to its ``overrides`` (``task=...`` and the run settings), ``metric`` and
``mode`` (what tuning selects on), ``target`` (a value of the metric, for time to target) and
``search`` (narrowed ranges: :meth:`optbench.sweeps.search_space.SearchSpace.narrowed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from optbench.errors import OptbenchError
from optbench.runner.config import config_dir


@dataclass
class SuiteTask:
    name: str
    overrides: list[str] = field(default_factory=list)
    metric: str | None = None
    mode: str | None = None
    target: float | None = None
    search: dict[str, Any] = field(default_factory=dict)


@dataclass
class Suite:
    name: str
    source: str
    tasks: list[SuiteTask]
    overrides: list[str] = field(default_factory=list)
    optimizers: list[str] | None = None
    protocol: str | None = None
    budget: int | None = None
    seeds: list[int] | None = None
    final_seeds: list[int] | None = None


def _directory() -> Path:
    return config_dir() / "suite"


def names() -> list[str]:
    return sorted(path.stem for path in _directory().glob("*.yaml"))


def load(name: str) -> Suite:
    """The suite ``name`` (a file of configs/suite/), or the suite in the YAML file ``name``."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else _directory() / f"{name}.yaml"
    if not path.is_file():
        raise OptbenchError(f"no suite named {name!r}; available: {', '.join(names())} "
                            "(or the path of a suite's .yaml file)")
    data = yaml.safe_load(path.read_text()) or {}
    tasks = data.pop("tasks", None)
    if not isinstance(tasks, dict) or not tasks:
        raise OptbenchError(f"{path}: a suite needs `tasks:`, a mapping of task names to their settings")
    accepted = [f for f in Suite.__dataclass_fields__ if f not in ("name", "source", "tasks")]
    unknown = sorted(set(data) - set(accepted))
    if unknown:
        raise OptbenchError(f"{path}: unknown key(s) {', '.join(unknown)}; a suite accepts: tasks, {', '.join(accepted)}")
    settings = [f for f in SuiteTask.__dataclass_fields__ if f != "name"]
    for task, spec in tasks.items():
        if not isinstance(spec, dict) or set(spec) - set(settings):
            raise OptbenchError(f"{path}: task {task}: {spec!r}; a task accepts: {', '.join(settings)}")
    return Suite(name=Path(name).stem, source=str(path),
                 tasks=[SuiteTask(str(task), **spec) for task, spec in tasks.items()], **data)
