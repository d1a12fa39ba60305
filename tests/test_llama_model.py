"""The LLaMA decoder: GaLore parameter counts, meta-device builds, rotary, causality, roles."""

from __future__ import annotations

import pytest
import torch

from optbench.contract import ParamRole
from optbench.tasks.llama.model import (
    INIT_STD,
    SIZES,
    Llama,
    LlamaConfig,
    apply_rotary,
    rotary_angles,
)
from optbench.tasks.llama.task import LlamaTask

# docs/references.md §1 (GaLore, untied embedding and head, vocab 32000), in millions.
REFERENCE_PARAMS_M = {
    "llama60m": 58.07,
    "llama130m": 134.11,
    "llama350m": 367.97,
    "llama1b": 1339.08,
    "llama7b": 6738.42,
}
TINY = LlamaConfig(vocab_size=50, hidden=64, intermediate=96, heads=2, layers=2, max_seq_len=32)


@pytest.mark.parametrize("size", REFERENCE_PARAMS_M)
def test_parameter_count_matches_reference_on_meta_device(size: str) -> None:
    with torch.device("meta"):
        model = LlamaTask(size=size).build_model()
    assert all(p.is_meta for p in model.parameters())
    count = sum(p.numel() for p in model.parameters())
    assert count / 1e6 == pytest.approx(REFERENCE_PARAMS_M[size], rel=1e-3)
    expected_head_dim = 128 if size == "llama7b" else 64
    assert model.cfg.head_dim == expected_head_dim


def test_sizes_table_is_the_reference_table() -> None:
    assert set(SIZES) == set(REFERENCE_PARAMS_M)


def test_state_dict_holds_parameters_only_and_survives_meta_to_empty() -> None:
    torch.manual_seed(0)
    reference = Llama(TINY)
    assert set(reference.state_dict()) == {name for name, _ in reference.named_parameters()}
    with torch.device("meta"):
        model = Llama(TINY)
    model = model.to_empty(device="cpu")
    model.load_state_dict(reference.state_dict())
    ids = torch.randint(0, TINY.vocab_size, (2, 16))
    torch.testing.assert_close(model(ids), reference(ids), rtol=0, atol=0)


def test_init_std_and_norm_gains() -> None:
    torch.manual_seed(0)
    model = Llama(LlamaConfig(500, 128, 256, 2, 2, 16))
    for name, p in model.named_parameters():
        if p.ndim == 2:
            assert p.std().item() == pytest.approx(INIT_STD, rel=0.05), name
        else:
            assert torch.equal(p, torch.ones_like(p)), name


def test_no_biases_and_untied_head() -> None:
    model = Llama(TINY)
    assert not any(name.endswith("bias") for name, _ in model.named_parameters())
    assert model.head.weight.data_ptr() != model.embed.weight.data_ptr()


def test_rotary_is_a_complex_rotation_of_half_pairs() -> None:
    """Independent form: pair (x_i, x_{i+d/2}) is multiplied by exp(i · pos · 10000^(-2i/d))."""
    t, d = 7, 8
    x = torch.randn(1, 1, t, d, dtype=torch.float64)
    cos, sin = rotary_angles(t, d, torch.device("cpu"))
    rotated = apply_rotary(x, cos.double(), sin.double())
    pos = torch.arange(t, dtype=torch.float64)[:, None]
    freq = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    z = torch.complex(x[..., : d // 2], x[..., d // 2 :]) * torch.exp(1j * pos * freq)
    expected = torch.cat([z.real, z.imag], dim=-1)
    torch.testing.assert_close(rotated, expected, rtol=1e-6, atol=1e-6)


def test_rotary_scores_depend_on_relative_position_only() -> None:
    d, t = 16, 12
    q, k = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)
    cos, sin = (a.double() for a in rotary_angles(t, d, torch.device("cpu")))
    qs = apply_rotary(q.expand(t, d), cos, sin)
    ks = apply_rotary(k.expand(t, d), cos, sin)
    assert (qs[5] @ ks[2]).item() == pytest.approx((qs[9] @ ks[6]).item(), rel=1e-5)  # fp32 angles


def test_attention_is_causal() -> None:
    torch.manual_seed(0)
    model = Llama(TINY)
    ids = torch.randint(0, TINY.vocab_size, (1, 12))
    changed = ids.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % TINY.vocab_size
    torch.testing.assert_close(model(ids)[:, :8], model(changed)[:, :8])
    assert not torch.allclose(model(ids)[:, 8:], model(changed)[:, 8:])


def test_longer_than_max_seq_len_is_refused() -> None:
    with pytest.raises(ValueError, match="max_seq_len"):
        Llama(TINY)(torch.zeros(1, TINY.max_seq_len + 1, dtype=torch.long))


def test_param_roles() -> None:
    task = LlamaTask(hidden=64, intermediate=96, heads=2, layers=3, vocab_size=300)
    model = task.build_model()
    roles = task.param_roles(model)
    assert roles["embed.weight"] is ParamRole.EMBEDDING
    assert roles["head.weight"] is ParamRole.HEAD
    assert list(roles.values()).count(ParamRole.MATRIX) == 7 * 3  # q k v o gate up down
    assert list(roles.values()).count(ParamRole.VECTOR) == 2 * 3 + 1  # block norms, final norm
    assert set(roles) == {name for name, _ in model.named_parameters()}
