"""Hessian-vector products over probe micro-batches: values, paths, and the model left untouched."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optbench.diagnostics.hvp import LossHessian
from optbench.diagnostics.vectors import random_vector

DTYPE = torch.float64


def mlp(*, batchnorm: bool = False, dropout: float = 0.0, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(4, 8)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(8))
    layers += [nn.Tanh(), nn.Dropout(dropout), nn.Linear(8, 3)]
    return nn.Sequential(*layers).to(DTYPE)


def mse(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    # Not F.mse_loss: its mean reduction breaks jvp-of-grad (pytorch#123996), forcing the fallback.
    x, y = batch
    return (model(x) - y).pow(2).mean()


def examples(batch: tuple[Tensor, Tensor]) -> int:
    return len(batch[0])


def batches(*sizes: int, seed: int = 1) -> list[tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, 4, generator=g, dtype=DTYPE), torch.randn(n, 3, generator=g, dtype=DTYPE))
        for n in sizes
    ]


def autograd_hvp(model: nn.Module, data: list, v: Tensor, *, train: bool) -> Tensor:
    """Plain double backward through the module itself, on a copy (train mode updates buffers)."""
    model = copy.deepcopy(model).train(train)
    params = list(model.parameters())
    total = sum(mse(model, b) * examples(b) for b in data) / sum(examples(b) for b in data)
    grads = torch.autograd.grad(total, params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])
    return torch.cat([h.reshape(-1) for h in torch.autograd.grad(flat @ v, params)])


def relative_error(a: Tensor, b: Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_hvp_matches_finite_differences_of_the_gradient() -> None:
    model = mlp()
    hessian = LossHessian(model, mse, batches(5, 11), weight_fn=examples, train=False)
    v = random_vector(hessian.dim, dtype=DTYPE, generator=torch.Generator().manual_seed(2))
    theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    eps = 1e-5
    gradients = []
    for sign in (1, -1):
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(theta + sign * eps * v, model.parameters())
        gradients.append(hessian.gradient())
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(theta, model.parameters())
    finite_difference = (gradients[0] - gradients[1]) / (2 * eps)
    assert relative_error(hessian.matvec(v), finite_difference) < 1e-4
    assert hessian.num_hvps == 1


@pytest.mark.parametrize("train", [False, True])
def test_both_paths_match_plain_autograd_with_weighted_microbatches(train: bool) -> None:
    model, data = mlp(batchnorm=True), batches(6, 10)
    v = random_vector(sum(p.numel() for p in model.parameters()), dtype=DTYPE)
    expected = autograd_hvp(model, data, v, train=train)
    for method in ("jvp", "double_backward"):
        hessian = LossHessian(model, mse, data, weight_fn=examples, train=train, method=method)
        assert relative_error(hessian.matvec(v), expected) < 1e-10, method


def test_microbatch_split_does_not_change_the_hessian() -> None:
    model, data = mlp(), batches(3, 9)
    whole = [(torch.cat([b[0] for b in data]), torch.cat([b[1] for b in data]))]
    split = LossHessian(model, mse, data, weight_fn=examples, train=False)
    joined = LossHessian(model, mse, whole, weight_fn=examples, train=False)
    v = random_vector(split.dim, dtype=DTYPE)
    assert relative_error(split.matvec(v), joined.matvec(v)) < 1e-12


def test_probe_leaves_modes_buffers_parameters_and_rng_alone() -> None:
    model = mlp(batchnorm=True, dropout=0.3).train()
    model[1].eval()  # a frozen BatchNorm inside a training model keeps its own mode
    modes = [m.training for m in model.modules()]
    state = copy.deepcopy(model.state_dict())
    rng = torch.get_rng_state()
    for train in (True, False):
        hessian = LossHessian(model, mse, batches(8), weight_fn=examples, train=train)
        hessian.matvec(torch.ones(hessian.dim, dtype=DTYPE))
        hessian.gradient()
        assert [m.training for m in model.modules()] == modes
    assert all(torch.equal(state[k], t) for k, t in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)


def test_dropout_probe_is_one_fixed_symmetric_operator() -> None:
    hessian = LossHessian(mlp(dropout=0.5), mse, batches(16, 16), train=True)
    u, v = (
        random_vector(hessian.dim, dtype=DTYPE, generator=torch.Generator().manual_seed(s))
        for s in (0, 1)
    )
    hv = hessian.matvec(v)
    assert torch.equal(hessian.matvec(v), hv)
    assert float(u @ hv) == pytest.approx(float(v @ hessian.matvec(u)), rel=1e-10)


def test_parameter_subset_is_a_block_of_the_full_hessian() -> None:
    model, data = mlp(), batches(12)
    full = LossHessian(model, mse, data, train=False)
    names = ["3.weight", "0.bias"]  # not contiguous, not in model order
    block = LossHessian(model, mse, data, train=False, param_names=names)
    v = random_vector(block.dim, dtype=DTYPE)
    padded = {
        name: torch.zeros(shape, dtype=DTYPE)
        for name, shape in zip(full.layout.names, full.layout.shapes, strict=True)
    }
    padded.update(block.layout.unflatten(v))
    expected = full.layout.unflatten(full.matvec(full.layout.flatten(padded)))
    assert relative_error(block.matvec(v), block.layout.flatten(expected)) < 1e-12
    assert block.parameters() == [dict(model.named_parameters())[n] for n in names]


class _OldStyleSquare(torch.autograd.Function):
    """An autograd.Function without ``setup_context``/``jvp``: no forward AD under torch.func."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return 2 * x * grad


class _SquareNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner, self.outer = nn.Linear(4, 6), nn.Linear(6, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.outer(_OldStyleSquare.apply(self.inner(x)))


class _SquareWithoutSecondDerivative(torch.autograd.Function):
    """x * x with forward-mode AD, whose first derivative has forward AD but no backward: double
    backward fails, forward-over-reverse works (as for an op with a fused first-order kernel)."""

    @staticmethod
    def forward(x: Tensor) -> Tensor:  # type: ignore[override]
        return x * x

    @staticmethod
    def setup_context(ctx, inputs: tuple[Tensor], output: Tensor) -> None:  # type: ignore[override]
        ctx.save_for_backward(*inputs)
        ctx.save_for_forward(*inputs)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return _Slope.apply(x, grad)

    @staticmethod
    def jvp(ctx, tangent: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return 2 * x * tangent


class _Slope(torch.autograd.Function):
    """2 x g: forward AD only."""

    @staticmethod
    def forward(x: Tensor, grad: Tensor) -> Tensor:  # type: ignore[override]
        return 2 * x * grad

    @staticmethod
    def setup_context(ctx, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:  # type: ignore[override]
        ctx.save_for_forward(*inputs)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        raise NotImplementedError("no second derivative")

    @staticmethod
    def jvp(ctx, x_tangent: Tensor, grad_tangent: Tensor) -> Tensor:  # type: ignore[override]
        x, grad = ctx.saved_tensors
        return 2 * (x_tangent * grad + x * grad_tangent)


class _FirstOrderNet(_SquareNet):
    def forward(self, x: Tensor) -> Tensor:
        return self.outer(_SquareWithoutSecondDerivative.apply(self.inner(x)))


class _PlainSquareNet(_SquareNet):
    def forward(self, x: Tensor) -> Tensor:
        return self.outer(self.inner(x) ** 2)


def test_auto_is_double_backward_and_falls_back_to_forward_over_reverse() -> None:
    torch.manual_seed(0)
    model, data = _SquareNet().to(DTYPE), batches(7)  # no forward AD: jvp fails, auto does not
    hessian = LossHessian(model, mse, data, weight_fn=examples, train=False)
    v = random_vector(hessian.dim, dtype=DTYPE)
    assert relative_error(hessian.matvec(v), autograd_hvp(model, data, v, train=False)) < 1e-10
    assert hessian.method == "double_backward"
    with pytest.raises(RuntimeError):
        LossHessian(model, mse, data, train=False, method="jvp").matvec(v)

    first_order = _FirstOrderNet().to(DTYPE)
    first_order.load_state_dict(model.state_dict())
    plain = _PlainSquareNet().to(DTYPE)
    plain.load_state_dict(model.state_dict())
    hessian = LossHessian(first_order, mse, data, weight_fn=examples, train=False)
    with pytest.warns(UserWarning, match="forward-over-reverse"):
        hv = hessian.matvec(v)
    assert hessian.method == "jvp"
    assert relative_error(hv, autograd_hvp(plain, data, v, train=False)) < 1e-10
    hessian.matvec(v)
    assert hessian.num_hvps == 2


class _Counted:
    """``mse`` that counts its forward passes."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        self.calls += 1
        return mse(model, batch)


def test_kept_gradient_graphs_give_the_same_products_without_a_forward() -> None:
    # train mode with dropout and BatchNorm: a kept graph must also keep its masks and statistics
    model, data = mlp(batchnorm=True, dropout=0.3), batches(6, 10, 5)
    vectors = [
        random_vector(
            sum(p.numel() for p in model.parameters()),
            dtype=DTYPE,
            generator=torch.Generator().manual_seed(s),
        )
        for s in range(3)
    ]
    products, calls = {}, {}
    for budget in (None, 0):  # None: half the free memory, room for all; 0: rebuilt every time
        loss = _Counted()
        hessian = LossHessian(model, loss, data, weight_fn=examples, train=True, cache_bytes=budget)
        products[budget] = [hessian.matvec(v) for v in vectors]
        calls[budget] = loss.calls
        assert hessian.num_hvps == 3
    assert calls == {None: 3, 0: 9}  # one forward per micro-batch, not per product
    assert all(torch.equal(a, b) for a, b in zip(products[None], products[0], strict=True))
    by_jvp = LossHessian(model, mse, data, weight_fn=examples, train=True, method="jvp")
    assert relative_error(products[None][0], by_jvp.matvec(vectors[0])) < 1e-10


def test_a_budget_keeps_the_graphs_that_fit() -> None:
    model, data = mlp(), batches(8, 8, 8)
    probe = LossHessian(model, mse, data, train=False)
    v = random_vector(probe.dim, dtype=DTYPE)
    probe.matvec(v)
    one_graph = probe._graphs[0].nbytes
    assert one_graph > 0
    loss = _Counted()
    hessian = LossHessian(model, loss, data, train=False, cache_bytes=2 * one_graph)
    hv = [hessian.matvec(v) for _ in range(3)]
    assert loss.calls == 3 + 1 + 1  # two kept at the first product, the third rebuilt every time
    assert torch.equal(hv[0], hv[2]) and torch.equal(hv[0], probe.matvec(v))


def test_changed_weights_drop_the_kept_graphs() -> None:
    model, data = mlp(batchnorm=True), batches(6, 9)
    hessian = LossHessian(model, mse, data, weight_fn=examples, train=False)
    v = random_vector(hessian.dim, dtype=DTYPE)
    hessian.matvec(v)

    def fresh() -> Tensor:
        rebuilt = LossHessian(model, mse, data, weight_fn=examples, train=False, cache_bytes=0)
        return rebuilt.matvec(v)

    with torch.no_grad():
        model[0].weight.add_(0.1)  # in place, as an optimizer step
    assert torch.equal(hessian.matvec(v), fresh())
    theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    torch.nn.utils.vector_to_parameters(theta * 1.1, model.parameters())  # by assignment
    assert torch.equal(hessian.matvec(v), fresh())
    model[1].running_var.mul_(2.0)  # a buffer the eval-mode loss reads
    assert torch.equal(hessian.matvec(v), fresh())


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv, self.out = nn.Linear(4, 12), nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv(x.unsqueeze(0)).chunk(3, dim=-1)
        return self.out(F.scaled_dot_product_attention(q, k, v, is_causal=True).squeeze(0))


def test_attention_runs_on_the_math_backend() -> None:
    # The default CPU kernel (flash) has no forward-mode AD: "jvp" only works on the math backend.
    torch.manual_seed(0)
    model, data = _Attention().to(DTYPE), batches(5, 6)
    hessian = LossHessian(model, mse, data, weight_fn=examples, train=False, method="jvp")
    v = random_vector(hessian.dim, dtype=DTYPE)
    assert relative_error(hessian.matvec(v), autograd_hvp(model, data, v, train=False)) < 1e-10


def test_auto_lets_errors_other_than_a_missing_second_derivative_through() -> None:
    # A vector on another device (a restored CPU vector on a CUDA model) is the caller's error:
    # auto must raise it, not take it for missing double backward and switch to forward-over-reverse.
    model, data = mlp(), batches(5)
    hessian = LossHessian(model, mse, data, train=False)
    v = torch.zeros(hessian.dim, dtype=DTYPE, device="meta")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        with pytest.raises(RuntimeError, match="expected device cpu but got meta"):
            hessian.matvec(v)
    assert hessian.method == "auto" and hessian.num_hvps == 0


def test_autograd_errors_for_a_missing_second_derivative_are_recognized() -> None:
    from optbench.diagnostics.hvp import _no_second_derivative

    q = torch.randn(1, 1, 3, 4, requires_grad=True)
    out = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, q, q)[0]
    (grad,) = torch.autograd.grad(out.pow(2).sum(), q, create_graph=True)
    with pytest.raises(RuntimeError) as missing:  # the fused backward has no derivative
        torch.autograd.grad(grad.sum(), q)
    assert _no_second_derivative(missing.value)
    assert not _no_second_derivative(RuntimeError("expected device cuda:0 but got cpu"))
