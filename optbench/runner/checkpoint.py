"""Atomic checkpoints: everything a resumed run needs to continue bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from optbench.runner.run_dir import atomic_write


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    # Our own file, holding RNG states and numpy arrays besides tensors: not weights-only.
    return torch.load(path, map_location="cpu", weights_only=False)
