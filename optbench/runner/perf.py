"""Model FLOPs utilisation: achieved training FLOP/s over the device's peak bf16 dense rate."""

from __future__ import annotations

import re

import torch

# Dense bf16 tensor-core peaks from the vendors' datasheets (no sparsity), keyed by the words of
# the name torch.cuda.get_device_name gives ("NVIDIA H100 80GB HBM3" is the SXM part). A key
# matches a name holding each of its words whole, and the key of most words wins: "H100 NVL" is
# not the SXM part, "L40" not an "L4", "A10G" not an "A10" (it is unknown: no MFU, not a wrong one).
_PEAK_BF16_FLOPS = {
    ("H100",): 989e12,  # SXM
    ("H100", "PCIE"): 756e12,
    ("H100", "NVL"): 835e12,
    ("H200",): 989e12,  # SXM
    ("H200", "NVL"): 835e12,
    ("GH200",): 989e12,
    ("A100",): 312e12,  # SXM and PCIe alike
    ("L40S",): 362e12,
    ("L40",): 181e12,
    ("L4",): 121e12,
    ("A10",): 125e12,
    ("RTX", "4090"): 165e12,
}


def peak_flops(device: torch.device) -> float | None:
    """The device's peak bf16 FLOP/s, or None (the CPU, or a GPU not in the table)."""
    if device.type != "cuda":
        return None
    words = set(re.split(r"[\s_-]+", torch.cuda.get_device_name(device).upper()))
    keys = [key for key in _PEAK_BF16_FLOPS if words.issuperset(key)]
    return _PEAK_BF16_FLOPS[max(keys, key=len)] if keys else None
