"""A run's identity: a hash of its resolved config, less the keys that do not change what it computes.

Sweep jobs live in the run store at ``<store>/<run id>``, so two sweeps (or two invocations of
the same sweep) that share a configuration share the run: it is computed once, resumed when
unfinished, and reused when finished.

A target (``target.*``) changes nothing a run computes unless it stops the run
(``target.stop=true``): without it, the ``target`` node is left out, so re-running a finished
run with another target reuses the run (its summary keeps the crossing of the target it ran
with; the crossing of any other can be read from its metrics.jsonl, with
:func:`optbench.runner.target.first_crossing`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

# Output places, logging cadence and the sweep objective change where and how often a run
# reports, not what it computes (training is bit-identical whatever their values).
NON_SEMANTIC = (
    "logger",
    "store",
    "objective",
    "train.log_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
)


def semantic(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without the non-semantic keys (and its target, unless the target stops it)."""
    kept = copy.deepcopy(config)
    target = kept.get("target")
    if isinstance(target, dict) and not target.get("stop"):
        del kept["target"]
    for dotted in NON_SEMANTIC:
        *parents, leaf = dotted.split(".")
        node: Any = kept
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return kept


def run_id(config: dict[str, Any]) -> str:
    """12 hex digits of the SHA-256 of the semantic config, serialized canonically."""
    canonical = json.dumps(semantic(config), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def first_difference(old: Any, new: Any, path: str = "") -> str | None:
    """The first key (dotted) whose value differs between two configs, as ``key: old -> new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            found = first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if old == new else f"{path}: {old!r} -> {new!r}"
