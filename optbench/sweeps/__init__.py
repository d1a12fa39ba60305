"""Sweeps: results collection over run dirs (and, later, presets and paper figures)."""
