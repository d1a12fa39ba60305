"""The plugins a config group offers, read from the config files alone (no imports, so it is fast)."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from optbench.runner.config import config_dir

GROUPS = {"optimizers": "optimizer", "tasks": "task", "schedules": "schedule", "loggers": "logger",
          "data": "data", "diagnostics": "diagnostics"}


@dataclass
class Entry:
    name: str
    description: str  # the file's first comment line (after Hydra's `# @package` header)
    settings: str  # its top-level scalar keys, as key=value


def _settings(node: dict, limit: int = 6) -> str:
    items = [f"{k}={v}" for k, v in node.items()
             if not k.startswith("_") and not isinstance(v, (dict, list)) and v is not None]
    return " ".join(items[:limit]) + (" ..." if len(items) > limit else "")


def entries(group: str) -> list[Entry]:
    found = []
    for path in sorted((config_dir() / group).glob("*.yaml")):
        text = path.read_text()
        comments = [line for line in text.splitlines() if line.startswith("#")]
        description = next((c.lstrip("# ").strip() for c in comments if not c.startswith("# @")), "")
        node = yaml.safe_load(text) or {}
        if group in node and "# @package _global_" in text:  # a preset that sets more than its group
            node = node[group]
        found.append(Entry(path.stem, description, _settings(node)))
    return found
