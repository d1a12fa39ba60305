"""Where frozen presets live: ``$OPTBENCH_PRESETS``, or ``presets`` in the working directory.

Read by Hydra's search-path plugin (``hydra_plugins/optbench_presets``) in every process that
composes a config, and by ``optbench tune`` when it writes ``tuned/<task>/<optimizer>.yaml``;
kept free of heavy imports for the plugin's sake.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "OPTBENCH_PRESETS"


def presets_root() -> Path:
    return Path(os.environ.get(ENV) or "presets").absolute()
