"""A tune's winner frozen as a config: ``<presets root>/tuned/<task>/<optimizer>.yaml``.

A ``# @package _global_`` file whose defaults list selects the task and optimizer (and any other
group the task's overrides chose), then sets the task's other overrides and the winner's values
as config keys, so ``optbench run tuned=<task>/<optimizer>`` composes the same config (and run
id) as the overrides it was tuned with; command-line overrides still win. The root joins Hydra's
search path through ``hydra_plugins/optbench_presets`` (:mod:`optbench.sweeps.presets_root`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from optbench.errors import OptbenchError
from optbench.runner.config import config_dir
from optbench.sweeps.presets_root import presets_root

GROUP = "tuned"
#: keys that say where a run goes or which seed it has, not what is tuned
LEFT_OUT = ("seed", "store")


class _Dumper(yaml.SafeDumper):
    """Mappings as blocks, lists of values on one line (``betas: [0.9, 0.95]``)."""


_Dumper.add_representer(list, lambda dumper, data: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=not any(isinstance(v, (dict, list)) for v in data)))


def path_of(task: str, optimizer: str) -> Path:
    return presets_root() / GROUP / task / f"{optimizer}.yaml"


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def body(overrides: list[str]) -> dict[str, Any]:
    """The preset for ``overrides`` (the task's, ``optimizer=...``, the winner's): config groups
    chosen in its defaults list, every other key set; Hydra's own keys, the seed and the store
    are left out."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    defaults: list[dict[str, str]] = []
    keys: dict[str, Any] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if override.is_hydra_override() or key in LEFT_OUT:
            continue
        if override.is_delete():
            raise OptbenchError(f"{override.input_line}: a deletion cannot be frozen into a tuned "
                                "preset; set the key to a value instead")
        if (config_dir() / key).is_dir():
            defaults = [d for d in defaults if f"override /{key}" not in d]
            defaults.append({f"override /{key}": override.value()})
        else:
            _set(keys, key, override.value())
    return {"defaults": defaults, **keys}


def write_preset(task: str, optimizer: str, overrides: list[str], header: list[str]) -> Path:
    """Write the preset of ``overrides`` (see :func:`body`) with ``header`` as its comment lines;
    return its path."""
    path = path_of(task, optimizer)
    path.parent.mkdir(parents=True, exist_ok=True)
    comments = "".join(f"# {line}\n" for line in header)
    text = yaml.dump(body(overrides), Dumper=_Dumper, sort_keys=False, width=1000)
    path.write_text(f"# @package _global_\n{comments}{text}")
    return path
