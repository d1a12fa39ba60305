"""A LLaMA decoder in one file: RMSNorm, rotary embeddings, SwiGLU, causal SDPA, no biases.

The architecture is the one the GaLore benchmark trains (HF ``LlamaForCausalLM`` with the configs
of jiaweizzhao/GaLore ``configs/llama_*.json``): pre-norm blocks, RMSNorm with eps 1e-6, rotary
position embeddings (base 10000, the HF "rotate half" layout), a SwiGLU MLP, separate q/k/v/o
projections (matrix-aware optimizers treat each as its own matrix, as the reference does), and an
LM head untied from the token embedding. Weights are drawn from N(0, 0.02²), the
``initializer_range`` of those configs and the HF ``LlamaConfig`` default; norm gains start at 1.

The rotary angles are computed in each forward pass (a (T, head_dim) table, negligible next to
the matmuls), so the module has no buffers: ``state_dict`` holds parameters only, and a model
built on the meta device and materialised with ``to_empty`` needs nothing but its weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

INIT_STD = 0.02  # GaLore configs/llama_*.json and HF LlamaConfig: initializer_range
NORM_EPS = 1e-6  # GaLore configs/llama_*.json: rms_norm_eps
ROPE_BASE = 10000.0


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int
    hidden: int
    intermediate: int
    heads: int
    layers: int
    max_seq_len: int

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


#: The GaLore benchmark sizes (docs/references.md §1), without vocab_size and max_seq_len.
SIZES: dict[str, dict[str, int]] = {
    "llama60m": {"hidden": 512, "intermediate": 1376, "heads": 8, "layers": 8},
    "llama130m": {"hidden": 768, "intermediate": 2048, "heads": 12, "layers": 12},
    "llama350m": {"hidden": 1024, "intermediate": 2736, "heads": 16, "layers": 24},
    "llama1b": {"hidden": 2048, "intermediate": 5461, "heads": 32, "layers": 24},
    "llama7b": {"hidden": 4096, "intermediate": 11008, "heads": 32, "layers": 32},
}


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = NORM_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()  # normalise in fp32 whatever the activation dtype, as HF LLaMA does
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rotary_angles(seq_len: int, head_dim: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """cos and sin of the rotary angles, (seq_len, head_dim) in fp32, halves repeated."""
    inv_freq = ROPE_BASE ** (-torch.arange(0, head_dim, 2, device=device).float() / head_dim)
    angles = torch.outer(torch.arange(seq_len, device=device).float(), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.heads, self.head_dim = cfg.heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden, cfg.hidden, bias=False)
        self.k_proj = nn.Linear(cfg.hidden, cfg.hidden, bias=False)
        self.v_proj = nn.Linear(cfg.hidden, cfg.hidden, bias=False)
        self.o_proj = nn.Linear(cfg.hidden, cfg.hidden, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape

        def heads(proj: nn.Linear) -> torch.Tensor:
            return proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)

        q = apply_rotary(heads(self.q_proj), cos, sin)
        k = apply_rotary(heads(self.k_proj), cos, sin)
        y = F.scaled_dot_product_attention(q, k, heads(self.v_proj), is_causal=True)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden, cfg.intermediate, bias=False)
        self.up_proj = nn.Linear(cfg.hidden, cfg.intermediate, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate, cfg.hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.hidden)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.hidden)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class Llama(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, vocab_size)."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.hidden)
        self.head = nn.Linear(cfg.hidden, cfg.vocab_size, bias=False)
        self.apply(_init_weights)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1]
        if t > self.cfg.max_seq_len:
            raise ValueError(f"sequence length {t} exceeds max_seq_len {self.cfg.max_seq_len}")
        cos, sin = rotary_angles(t, self.cfg.head_dim, input_ids.device)
        x = self.embed(input_ids)
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.head(self.norm(x))


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
