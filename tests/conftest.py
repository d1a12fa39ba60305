"""Fixtures shared by the tests; helper functions are in helpers.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch
from slurm_cluster import ClusterUnavailable, slurm_cluster


@pytest.fixture(autouse=True, scope="session")
def _offline_environment(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never touch the network or the user's caches."""
    os.environ["OPTBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Many tiny ops: one thread is several times faster than two on a shared, busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def slurm_env() -> Iterator[dict[str, str]]:
    """The environment (SLURM_CONF) of a throwaway single-node SLURM cluster; skips, with the
    reason, where SLURM cannot run."""
    try:
        with slurm_cluster() as env:
            yield env
    except ClusterUnavailable as exc:
        pytest.skip(str(exc))
