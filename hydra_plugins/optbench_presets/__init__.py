"""optbench's Hydra search-path plugin: frozen presets (``optbench tune`` writes
``presets/tuned/<task>/<optimizer>.yaml``) become config groups, so ``optbench run
tuned=logreg/adamw`` composes one. The root is ``$OPTBENCH_PRESETS`` or ``presets`` in the working
directory; it joins the search path only when it exists (Hydra warns about a missing one on every
run), after optbench's own configs, so their names win and command-line overrides still win.
"""
from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from optbench.sweeps.presets_root import presets_root


class OptbenchPresets(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        root = presets_root()
        if root.is_dir():
            search_path.append(provider="optbench-presets", path=f"file://{root}")
