"""optbench: a reproducible experiment runner for deep-learning optimizer research."""

__version__ = "0.1.0"
