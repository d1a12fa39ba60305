"""The in-repo optimizer algorithms: reference equivalence, SWAN's numerics and the optimizer
contract (state-dict round trip, validation, descent) for every optimizer."""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import pytest
import torch

from optbench.optimizers import muon
from optbench.optimizers._matrix import orthogonalize_quintic
from optbench.optimizers.ademamix import AdEMAMix
from optbench.optimizers.galore import GaLoreAdamW
from optbench.optimizers.lion import Lion
from optbench.optimizers.muon import Muon, compute_dtype_on
from optbench.optimizers.sign import SignSGD, Signum
from optbench.optimizers.swan import SWAN, grad_norm, grad_whitening

STEPS = 20


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def least_squares(shape: tuple[int, int], seed: int = 0) -> tuple[torch.Tensor, Callable]:
    """A random matrix least-squares problem ``mean((X W^T - Y)^2)``: initial W and loss(W)."""
    gen = torch.Generator().manual_seed(seed)
    out_dim, in_dim = shape
    x = torch.randn(64, in_dim, generator=gen)
    y = x @ torch.randn(out_dim, in_dim, generator=gen).T
    w0 = torch.randn(out_dim, in_dim, generator=gen) * 0.1
    return w0, lambda w: ((x @ w.T - y) ** 2).mean()


def run(make_opt: Callable, shape: tuple[int, int], steps: int = STEPS) -> torch.Tensor:
    """Parameters after ``steps`` closed-loop steps of ``make_opt([w])`` on ``least_squares``."""
    w0, loss_fn = least_squares(shape)
    w = torch.nn.Parameter(w0.clone())
    opt = make_opt([w])
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(w).backward()
        opt.step()
    return w.detach()


# ----------------------------------------------------------------------------------------------
# Reference equivalence


def test_lion_matches_lion_pytorch() -> None:
    lion_pytorch = pytest.importorskip("lion_pytorch")
    kw = {"lr": 3e-3, "betas": (0.9, 0.99), "weight_decay": 0.1}
    ours = run(lambda p: Lion(p, **kw), (8, 12))
    ref = run(lambda p: lion_pytorch.Lion(p, **kw), (8, 12))
    assert rel_err(ours, ref) <= 1e-6


def reference_beta3(step: int, beta1: float, beta3: float, warmup: int) -> float:
    """apple/ml-ademamix ``linear_hl_warmup_scheduler`` (from beta1), written out."""
    if step >= warmup:
        return beta3
    life1, life3 = (math.log(0.5) / math.log(b + 1e-8) - 1 for b in (beta1, beta3))
    frac = step / warmup
    return 0.5 ** (1 / ((1 - frac) * life1 + frac * life3 + 1))


@pytest.mark.parametrize("warmup", [None, 10])
def test_ademamix_matches_pytorch_optimizer(
    warmup: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytorch-optimizer's beta3 warmup is the reference's without the +1e-8 inside the logs
    (~1e-7 relative on beta3, 1.6e-6 on the parameters here); it is swapped for the reference's
    scheduler so the rest of the update is compared at 1e-6."""
    po = pytest.importorskip("pytorch_optimizer")
    monkeypatch.setattr(
        po.AdEMAMix,
        "schedule_beta3",
        staticmethod(
            lambda t_warm, step, b1, b3: (
                b3 if t_warm is None else reference_beta3(step, b1, b3, t_warm)
            )
        ),
    )
    kw = {"lr": 1e-2, "betas": (0.9, 0.999, 0.9999), "eps": 1e-8, "weight_decay": 0.1, "alpha": 8.0}
    ours = run(lambda p: AdEMAMix(p, alpha_warmup=warmup, beta3_warmup=warmup, **kw), (8, 12))
    # pytorch-optimizer couples weight decay by default and has one warmup length for both.
    ref = run(lambda p: po.AdEMAMix(p, weight_decouple=True, t_alpha_beta3=warmup, **kw), (8, 12))
    assert rel_err(ours, ref) <= 1e-6


@pytest.mark.parametrize("shape", [(8, 12), (12, 8)])
def test_galore_matches_pytorch_optimizer(shape: tuple[int, int]) -> None:
    """pytorch-optimizer refreshes the projector at steps 0, T-1, 2T-1, ... (it counts from 1), the
    reference at 0, T, 2T; with T = 1 (an SVD every step) both agree."""
    po = pytest.importorskip("pytorch_optimizer")
    kw = {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.1}
    low_rank = {"rank": 3, "update_proj_gap": 1, "scale": 0.25}
    ours = run(lambda p: GaLoreAdamW(p, proj_type="std", **low_rank, **kw), shape)
    ref = run(
        lambda p: po.GaLore([{"params": p, "projection_type": "std", **low_rank}], **kw), shape
    )
    assert rel_err(ours, ref) <= 1e-6


def reference_galore(
    w0: torch.Tensor, grads: list[torch.Tensor], proj_type, rank, gap, scale, lr, betas, eps, wd
) -> torch.Tensor:
    """jiaweizzhao/GaLore (galore_projector.py + adamw.py) written out plainly."""
    w = w0.clone()
    b1, b2 = betas
    for it, g in enumerate(grads):
        right = {"std": g.shape[0] >= g.shape[1], "right": True, "left": False}[proj_type]
        if it % gap == 0:  # the reference passes the step count before incrementing it
            u, _, vh = torch.linalg.svd(g, full_matrices=False)
            ortho = vh[:rank, :] if right else u[:, :rank]
        r = g @ ortho.t() if right else ortho.t() @ g
        if it == 0:
            m, v = torch.zeros_like(r), torch.zeros_like(r)
        m.mul_(b1).add_(r, alpha=1 - b1)
        v.mul_(b2).addcmul_(r, r, value=1 - b2)
        n = m / v.sqrt().add_(eps)
        back = (n @ ortho if right else ortho @ n) * scale
        w.add_(back, alpha=-lr * math.sqrt(1 - b2 ** (it + 1)) / (1 - b1 ** (it + 1)))
        w.add_(w, alpha=-lr * wd)
    return w


@pytest.mark.parametrize(
    ("shape", "proj_type"),
    [((8, 12), "std"), ((12, 8), "std"), ((8, 12), "right"), ((12, 8), "left")],
)
def test_galore_matches_reference_algorithm(shape: tuple[int, int], proj_type: str) -> None:
    """Fed the same gradients. (In a closed loop, 1-ulp differences, e.g. from the SVD factor's
    memory layout, reach 1e-6 within 20 steps through Adam's direction for entries near eps.)"""
    gen = torch.Generator().manual_seed(0)
    w0 = torch.randn(shape, generator=gen)
    grads = [torch.randn(shape, generator=gen) for _ in range(STEPS)]
    hp = {"rank": 3, "scale": 0.25, "lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-6}
    w = torch.nn.Parameter(w0.clone())
    opt = GaLoreAdamW([w], update_proj_gap=3, weight_decay=0.1, proj_type=proj_type, **hp)
    for g in grads:
        w.grad = g
        opt.step()
    ref = reference_galore(w0, grads, proj_type, gap=3, wd=0.1, **hp)
    assert rel_err(w.detach(), ref) <= 1e-6


def reference_muon_direction(
    grad: torch.Tensor, buf: torch.Tensor, beta: float, dtype: torch.dtype
) -> torch.Tensor:
    """KellerJordan/Muon ``muon_update`` + ``zeropower_via_newtonschulz5``, written out (Nesterov,
    5 steps; the reference's ``bfloat16()`` cast made ``dtype``); updates ``buf`` in place like the
    reference."""
    a, b, c = 3.4445, -4.7750, 2.0315
    buf.lerp_(grad, 1 - beta)
    x = grad.lerp(buf, beta).to(dtype)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / (x.norm() + 1e-7)
    for _ in range(5):
        gram = x @ x.T
        x = a * x + (b * gram + (c * gram) @ gram) @ x  # the reference's "c * A @ A" is (cA)A
    if tall:
        x = x.T
    x *= max(1, grad.size(0) / grad.size(1)) ** 0.5
    return x


@pytest.mark.parametrize(
    ("dtype", "tolerance"),
    # bf16: the reference's own dtype and operations, bit for bit. float32: the reference run in
    # float32 against our fused addmm, which rounds once per product instead of twice.
    [(torch.bfloat16, 1e-6), (torch.float32, 5e-6)],
)
@pytest.mark.parametrize("shape", [(8, 12), (12, 8)])
def test_muon_matches_reference_update(
    shape: tuple[int, int], dtype: torch.dtype, tolerance: float
) -> None:
    lr, wd, beta = 0.02, 0.1, 0.95
    make = lambda p: Muon(p, lr=lr, momentum=beta, weight_decay=wd, compute_dtype=dtype)
    ours = run(make, shape)
    w0, loss_fn = least_squares(shape)
    w = w0.clone().requires_grad_(True)
    buf = torch.zeros_like(w)
    for _ in range(STEPS):
        w.grad = None
        loss_fn(w).backward()
        direction = reference_muon_direction(w.grad.clone(), buf, beta, dtype)
        with torch.no_grad():
            w.mul_(1 - lr * wd).add_(direction, alpha=-lr)
    assert rel_err(ours, w.detach()) <= tolerance


def test_muon_auto_dtype_is_bf16_where_native_and_float32_where_emulated(monkeypatch) -> None:
    assert compute_dtype_on("auto", torch.device("cuda", 0)) == torch.bfloat16
    assert compute_dtype_on("float64", torch.device("cuda", 0)) == torch.float64
    cpu = torch.device("cpu")
    for native, dtype in [(True, torch.bfloat16), (False, torch.float32)]:
        monkeypatch.setattr(muon, "_cpu_has_native_bf16", lambda native=native: native)
        assert compute_dtype_on("auto", cpu) == dtype
        auto = run(Muon, (12, 8), steps=3)  # the default is that dtype bit for bit
        named = run(lambda p, d=str(dtype)[6:]: Muon(p, compute_dtype=d), (12, 8), steps=3)
        assert torch.equal(auto, named)
    assert not torch.equal(auto, run(lambda p: Muon(p, compute_dtype="bfloat16"), (12, 8), steps=3))


def test_muon_fp32_orthogonalizes() -> None:
    g = torch.randn(16, 40, generator=torch.Generator().manual_seed(1))
    s = torch.linalg.svdvals(orthogonalize_quintic(g, 5, torch.float32))
    assert 0.5 < s.min() and s.max() < 1.25  # Muon's quintic lands in a band around 1


def test_signsgd_closed_form() -> None:
    lr, wd, steps = 0.01, 0.1, 7
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    g = torch.tensor([0.3, -1e-6, 0.0])
    opt = SignSGD([w], lr=lr, weight_decay=wd)
    for _ in range(steps):
        w.grad = g.clone()
        opt.step()
    decay = 1 - lr * wd
    expected = torch.tensor([1.0, -2.0, 0.5]) * decay**steps - lr * g.sign() * sum(
        decay**k for k in range(steps)
    )
    assert rel_err(w.detach(), expected) <= 1e-6
    assert not opt.state


def test_signum_closed_form() -> None:
    """Momentum m = 0.1·1 after +1; then -0.5 gives m = 0.09 - 0.05 > 0 (step still +), then
    -0.5 again gives m = 0.036 - 0.05 < 0."""
    w = torch.nn.Parameter(torch.zeros(1))
    opt = Signum([w], lr=0.1, momentum=0.9)
    for grad in (1.0, -0.5, -0.5):
        w.grad = torch.tensor([grad])
        opt.step()
    assert w.item() == pytest.approx(-0.1 - 0.1 + 0.1)
    assert opt.state[w]["momentum_buffer"].item() == pytest.approx(
        0.1 * 0.9 * 0.9 - 0.05 * 0.9 - 0.05
    )


# ----------------------------------------------------------------------------------------------
# SWAN numerics


def exact_whitening(g: torch.Tensor) -> torch.Tensor:
    """(G G^T)^(-1/2) G in float64 by eigendecomposition, no ridge; for tall G the equal
    G (G^T G)^(-1/2) (G G^T is singular there)."""
    if g.size(0) > g.size(1):
        return exact_whitening(g.T).T
    g = g.double()
    evals, evecs = torch.linalg.eigh(g @ g.T)
    return evecs @ torch.diag(evals.rsqrt()) @ evecs.T @ g


def test_grad_norm_standardises_rows() -> None:
    g = torch.randn(6, 50, generator=torch.Generator().manual_seed(0))
    out = grad_norm(g * torch.linspace(0.1, 10, 6)[:, None] + 3.0)
    torch.testing.assert_close(out.mean(dim=1), torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=1, unbiased=False), torch.ones(6), atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", [(32, 128), (64, 256), (48, 128)])
def test_grad_whitening_default_matches_eigh(shape: tuple[int, int]) -> None:
    g = grad_norm(torch.randn(shape, generator=torch.Generator().manual_seed(0)))
    assert rel_err(grad_whitening(g), exact_whitening(g)) <= 1e-3
    assert rel_err(grad_whitening(g, method="eigh"), exact_whitening(g)) <= 1e-4


def test_grad_whitening_tall_matches_eigh() -> None:
    """A tall normalised gradient is always rank-deficient, so this uses a raw full-rank one."""
    g = torch.randn(128, 48, generator=torch.Generator().manual_seed(0))
    assert rel_err(grad_whitening(g), exact_whitening(g)) <= 1e-3


def test_grad_whitening_batched_equals_single() -> None:
    gs = grad_norm(torch.randn(3, 16, 40, generator=torch.Generator().manual_seed(0)))
    batched = grad_whitening(gs)
    for g, out in zip(gs, batched):
        assert rel_err(out, grad_whitening(g)) <= 1e-5


@pytest.mark.parametrize("method", ["newton_schulz", "eigh"])
@pytest.mark.parametrize("shape", [(24, 24), (40, 12)])
def test_swan_rank_deficient_gradients_give_finite_updates(shape, method) -> None:
    """Row-centering makes a square or tall normalised gradient rank-deficient (G~·1 = 0)."""
    w = torch.nn.Parameter(torch.zeros(shape))
    w.grad = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    assert torch.linalg.matrix_rank(grad_norm(w.grad)) < min(shape)
    SWAN([w], lr=1.0, method=method).step()
    assert torch.isfinite(w).all() and w.abs().max() > 0


def test_swan_step_is_stateless_batched_and_rescaled() -> None:
    gen = torch.Generator().manual_seed(0)
    shapes = [(16, 40), (16, 40), (40, 16), (8, 8)]  # (40, 16) joins the (16, 40) batch transposed
    params = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    opt = SWAN(params, lr=1.0)
    opt.step()
    assert not opt.state
    for p in params:
        alone = torch.nn.Parameter(torch.zeros(p.shape))
        alone.grad = p.grad.clone()
        SWAN([alone], lr=1.0).step()
        assert rel_err(p.detach(), alone.detach()) <= 1e-5
        # rescale: ||update||_F = ||G~||_F = sqrt(m·n) (rows have unit population variance)
        assert p.norm().item() == pytest.approx(math.sqrt(p.numel()), rel=1e-4)


def test_swan_bf16_params_compute_in_fp32() -> None:
    w = torch.nn.Parameter(torch.zeros(16, 40, dtype=torch.bfloat16))
    w.grad = torch.randn(16, 40).bfloat16()
    ref = torch.nn.Parameter(torch.zeros(16, 40))
    ref.grad = w.grad.float()
    SWAN([w], lr=0.01).step()
    SWAN([ref], lr=0.01).step()
    assert w.dtype == torch.bfloat16
    assert rel_err(w.detach(), ref.detach()) <= 1e-2  # bf16 rounding of the result only


# ----------------------------------------------------------------------------------------------
# The optimizer contract, for every optimizer

OPTIMIZERS: dict[str, Callable] = {
    "swan": lambda p: SWAN(p, lr=0.05, weight_decay=0.01),
    "swan_eigh": lambda p: SWAN(p, lr=0.05, method="eigh"),
    "galore": lambda p: GaLoreAdamW(p, lr=0.5, rank=4, update_proj_gap=2, weight_decay=0.01),
    "muon": lambda p: Muon(p, lr=0.05, weight_decay=0.01),
    "lion": lambda p: Lion(p, lr=0.01, weight_decay=0.01),
    "ademamix": lambda p: AdEMAMix(p, lr=0.02, alpha_warmup=5, beta3_warmup=5, weight_decay=0.01),
    "signsgd": lambda p: SignSGD(p, lr=0.01, weight_decay=0.01),
    "signum": lambda p: Signum(p, lr=0.01, weight_decay=0.01),
}


def train(opt: torch.optim.Optimizer, w: torch.Tensor, loss_fn: Callable, steps: int) -> None:
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(w).backward()
        opt.step()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip_is_bit_exact(name: str) -> None:
    w0, loss_fn = least_squares((10, 16))
    w = torch.nn.Parameter(w0.clone())
    opt = OPTIMIZERS[name]([{"params": [w], "role": "matrix"}])
    train(opt, w, loss_fn, 3)
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer)  # weights_only: the state holds only tensors, numbers and strings

    w2 = torch.nn.Parameter(w.detach().clone())
    opt2 = OPTIMIZERS[name]([{"params": [w2], "role": "matrix"}])
    opt2.load_state_dict(saved)
    train(opt, w, loss_fn, 3)  # crosses GaLore's projector refresh at step 4
    train(opt2, w2, loss_fn, 3)
    assert torch.equal(w, w2)
    for key, value in opt.state[w].items():
        other = opt2.state[w2][key]
        assert torch.equal(value, other) if torch.is_tensor(value) else value == other


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_loss_falls_and_closure_loss_is_returned(name: str) -> None:
    w0, loss_fn = least_squares((10, 16))
    w = torch.nn.Parameter(w0.clone())
    opt = OPTIMIZERS[name]([w])
    first = loss_fn(w).item()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(w)
        loss.backward()
        return loss

    for _ in range(60):
        returned = opt.step(closure)
    assert torch.is_tensor(returned)
    assert loss_fn(w).item() < 0.5 * first


def test_optimizer_state_sizes() -> None:
    """Buffers per m×n matrix: SWAN 0, signSGD 0, Muon/Lion/Signum 1, AdEMAMix 3, GaLore r(m+2n)."""
    m, n, r = 10, 16, 4
    expected = {"swan": 0, "swan_eigh": 0, "signsgd": 0, "muon": m * n, "lion": m * n}
    expected |= {"signum": m * n, "ademamix": 3 * m * n, "galore": r * m + 2 * r * n}
    for name, make in OPTIMIZERS.items():
        w0, loss_fn = least_squares((m, n))
        w = torch.nn.Parameter(w0.clone())
        opt = make([w])
        train(opt, w, loss_fn, 1)
        count = sum(v.numel() for s in opt.state.values() for v in s.values() if torch.is_tensor(v))
        assert count == expected[name], name


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: SWAN(p, lr=-1), "Invalid learning rate: -1"),
        (lambda p: SWAN(p, ns_steps=0), "Invalid ns_steps"),
        (lambda p: SWAN(p, method="svd"), "Invalid method"),
        (lambda p: SWAN(p, compute_dtype="int8"), "Invalid compute_dtype"),
        (lambda p: GaLoreAdamW(p, rank=0), "Invalid rank"),
        (lambda p: GaLoreAdamW(p, proj_type="full"), "Invalid proj_type"),
        (lambda p: GaLoreAdamW(p, betas=(0.9, 1.0)), "Invalid beta2"),
        (lambda p: Muon(p, momentum=1.5), "Invalid momentum"),
        (
            lambda p: Muon(p, compute_dtype=torch.float16),
            r"Invalid compute_dtype: 'float16' \(expected one of auto, bfloat16, float32, float64\)",
        ),
        (lambda p: Lion(p, lr=-1), "Invalid learning rate: -1"),
        (lambda p: AdEMAMix(p, betas=(0.9, 0.999, -0.1)), "Invalid beta3"),
        (lambda p: AdEMAMix(p, alpha_warmup=0), "Invalid alpha_warmup"),
        (lambda p: AdEMAMix(p, betas=(0.9, 0.999)), "Invalid betas"),
        (lambda p: Signum(p, weight_decay=-1), "Invalid weight_decay"),
        (lambda p: SignSGD(p, lr=-0.5), "Invalid learning rate"),
    ],
)
def test_invalid_hyperparameters_raise(make: Callable, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make([torch.nn.Parameter(torch.zeros(3, 4))])


@pytest.mark.parametrize("cls", [SWAN, GaLoreAdamW, Muon])
def test_matrix_optimizers_reject_non_matrices(cls: type) -> None:
    with pytest.raises(ValueError, match="only accepts matrix parameters"):
        cls([torch.nn.Parameter(torch.zeros(5))])
    opt = cls([torch.nn.Parameter(torch.zeros(5, 3))])
    with pytest.raises(ValueError, match="only accepts matrix parameters"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))]})


@pytest.mark.parametrize("name", ["swan", "galore", "muon"])
def test_conv_kernels_are_updated_as_their_flattened_matrix(name):
    """A 4-D kernel (out × in × kh × kw), even channels-last, takes the step of its out × rest
    matrix, as the Muon reference treats conv filters."""
    from optbench.optimizers.galore import GaLoreAdamW
    from optbench.optimizers.muon import Muon
    from optbench.optimizers.swan import SWAN

    factory = {"swan": SWAN, "galore": lambda p: GaLoreAdamW(p, rank=2), "muon": Muon}[name]
    torch.manual_seed(0)
    kernel = torch.nn.Parameter(torch.randn(6, 3, 3, 3).contiguous(memory_format=torch.channels_last))
    flat = torch.nn.Parameter(kernel.detach().reshape(6, -1).clone())
    optimizers = [factory([kernel]), factory([flat])]
    for _ in range(3):
        grad = torch.randn(6, 3, 3, 3)
        kernel.grad, flat.grad = grad.contiguous(memory_format=torch.channels_last), grad.reshape(6, -1)
        for optimizer in optimizers:
            optimizer.step()
    torch.testing.assert_close(kernel.detach().reshape(6, -1), flat.detach(), rtol=0, atol=0)
