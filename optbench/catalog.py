"""The plugins a config group offers, read from the config files alone (no imports, so it is fast)."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from optbench.config import config_dir

GROUPS = {"optimizers": "optimizer", "tasks": "task", "schedules": "schedule", "loggers": "logger"}


@dataclass
class Entry:
    name: str
    description: str  # the file's first comment line
    settings: str  # its top-level scalar keys, as key=value


def _settings(node: dict, limit: int = 6) -> str:
    items = [f"{k}={v}" for k, v in node.items()
             if not k.startswith("_") and not isinstance(v, (dict, list)) and v is not None]
    return " ".join(items[:limit]) + (" ..." if len(items) > limit else "")


def entries(group: str) -> list[Entry]:
    found = []
    for path in sorted((config_dir() / group).glob("*.yaml")):
        text = path.read_text()
        first = text.splitlines()[0] if text else ""
        description = first.lstrip("# ").strip() if first.startswith("#") else ""
        found.append(Entry(path.stem, description, _settings(yaml.safe_load(text) or {})))
    return found
