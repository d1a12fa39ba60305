"""optbench's Hydra launcher plugin: ``hydra/launcher=parallel`` (see optbench.sweeps.parallel).

Hydra finds launchers in the ``hydra_plugins`` namespace package; this one stays light to
import (Hydra imports every plugin at start-up) and delegates to optbench.
"""
