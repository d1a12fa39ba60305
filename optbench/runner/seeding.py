"""Seeds derived from the run seed, and the RNG states a checkpoint must carry.

Model init, data order and probe batches draw from independent streams, so changing one (say,
the probe size) never shifts another (the data order).
"""

from __future__ import annotations

import random
import zlib
from typing import Any

import numpy as np
import torch


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for one named purpose (``"model"``, ``"data"``, ``"probe"``) of run ``seed``
    (a run's seed is checked against :data:`optbench.runner.config.SEEDS` before it gets here)."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(stream.encode())])
    return int(sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
