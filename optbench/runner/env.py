"""env.json: what a reader needs to reproduce a run (versions, code commit, hardware, command, and
the process-wide switches that change numerics)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

_PACKAGES = (
    "optbench", "torch", "numpy", "scipy", "scikit-learn", "hydra-core", "omegaconf", "wandb",
    "datasets", "tokenizers", "pytorch-optimizer", "submitit",
)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(source: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(source), *args], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _sdpa_backends() -> list[str]:
    """The attention kernels scaled_dot_product_attention may pick (a loop that needs double
    backward narrows them to math for its steps: runner.loop)."""
    enabled = {
        "flash": torch.backends.cuda.flash_sdp_enabled,
        "mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled,
        "math": torch.backends.cuda.math_sdp_enabled,
        "cudnn": torch.backends.cuda.cudnn_sdp_enabled,
    }
    return [name for name, on in enabled.items() if on()]


def _numerics(compiled: bool) -> dict[str, Any]:
    """Every switch that changes a run's numbers beyond its config's precision: TF32 for matmuls
    and cuDNN, the attention kernels, train.compile, and what makes CUDA kernels deterministic."""
    return {
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "sdpa_backends": _sdpa_backends(),
        "compile": compiled,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def capture_env(device: torch.device, compiled: bool) -> dict[str, Any]:
    """``compiled``: the run's train.compile."""
    source = Path(__file__).resolve().parents[2]  # the checkout, for editable installs
    commit = _git(source, "rev-parse", "HEAD")
    env: dict[str, Any] = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {p: v for p in _PACKAGES if (v := _version(p)) is not None},
        "git": {
            "commit": commit,
            "dirty": bool(_git(source, "status", "--porcelain")) if commit else None,
        },
        "device": str(device),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "numerics": _numerics(compiled),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
        env["gpu_count"] = torch.cuda.device_count()
    return env
