"""Device selection and numeric precision."""

from __future__ import annotations

import contextlib
import re

import torch

from optbench.errors import OptbenchError
from optbench.runner import distributed
from optbench.runner.config import Precision

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def resolve_device(spec: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; an unavailable device is a user error.
    Under torchrun, CUDA means this process's own GPU: ``cuda:LOCAL_RANK``."""
    if not _DEVICE.match(spec):
        raise OptbenchError(f"device={spec!r} is not a device; accepted: auto, cpu, cuda, cuda:N, mps")
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda" and distributed.world_size() > 1:
        device = torch.device("cuda", distributed.local_rank())
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptbenchError(f"device={spec} but no CUDA device is visible; use device=cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise OptbenchError(
            f"device={spec} but only {torch.cuda.device_count()} CUDA device(s) are visible"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise OptbenchError("device=mps but MPS is not available; use device=cpu or auto")
    return device


def param_dtype(precision: Precision) -> torch.dtype:
    """The dtype of parameters and floating data: bf16 runs keep fp32 weights under autocast."""
    return torch.float64 if precision == Precision.fp64 else torch.float32


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager:
    if precision == Precision.bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def full_fp32() -> None:
    """fp32 matmuls and convolutions at full fp32 precision on CUDA: PyTorch lets cuDNN use TF32
    (a 10-bit mantissa) for fp32 convolutions by default on Ampere and later, so an fp32 run's
    convolutions would not be fp32. No precision asks for TF32: bf16 computes in bf16 where
    autocast casts, and what it leaves in fp32 (losses, probes, optimizers' matrix functions)
    is meant to stay fp32. A process-wide switch, set before the run computes anything."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
