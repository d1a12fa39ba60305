"""Model FLOPs utilisation: achieved training FLOP/s over the device's peak bf16 dense rate."""

from __future__ import annotations

import torch

# Dense bf16 tensor-core peaks from the vendors' datasheets (no sparsity), most specific first.
_PEAK_BF16_FLOPS = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM
    ("H200", 989e12),
    ("GH200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("A10", 125e12),
    ("RTX 4090", 165e12),
)


def peak_flops(device: torch.device) -> float | None:
    """The device's peak bf16 FLOP/s, or None (the CPU, or a GPU not in the table)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in _PEAK_BF16_FLOPS if key in name), None)
