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
import torch.distributed as dist

from optbench.runner import distributed


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for one named purpose (``"model"``, ``"data"``, ``"probe"``) of run ``seed``
    (a run's seed is checked against :data:`optbench.runner.config.SEEDS` before it gets here)."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(stream.encode())])
    return int(sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_states(device: torch.device) -> dict[str, Any]:
    """The RNG states to checkpoint. CUDA's: the generator of the GPU the run uses alone (not
    every visible one's), keyed by rank; under torchrun, every rank's own GPU's, gathered (a
    collective: every rank calls it), so that each rank resumes its own stream."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        own = torch.cuda.get_rng_state(device)  # a CPU tensor
        ranks: list[Any] = [own] * distributed.world_size()
        if len(ranks) > 1:  # object collectives go through the group's CPU backend (gloo)
            dist.all_gather_object(ranks, own)
        states["cuda"] = dict(enumerate(ranks))
    return states


def restore_rng_states(states: dict[str, Any], device: torch.device) -> None:
    """Restore a checkpoint's RNG states; on CUDA, into the run's GPU alone: this rank's saved
    state, whatever the number of processes or GPUs that wrote it (a rank it holds none for, in
    a run resumed with more processes, keeps the state it has). Older checkpoints hold a list,
    every visible GPU's state by device index: the run's device's entry is restored, if there."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    saved = states.get("cuda")
    if saved is None or device.type != "cuda":
        return
    if isinstance(saved, list):
        index = torch.cuda.current_device() if device.index is None else device.index
        state = saved[index] if index < len(saved) else None
    else:
        state = saved.get(distributed.rank())
    if state is not None:
        torch.cuda.set_rng_state(state, device)
