"""Hessian-vector products of a task's loss over a fixed set of probe micro-batches.

The loss is the weighted mean of the task contract, ``L = sum_b loss(b) * w(b) / sum_b w(b)``, so
``H v = sum_b H_b v * w(b) / sum_b w(b)`` is accumulated one micro-batch at a time and memory stays
that of one micro-batch.

Each product is forward-over-reverse (``torch.func.jvp`` of ``torch.func.grad``, through
``functional_call``). Double backward (``autograd.grad`` with ``create_graph=True``) is the
alternative: on a CPU MLP it measured 2.8 gradients per HVP against 3.6 for forward-over-reverse
(``benchmarks/sharpness.py``). It is used by choice or, with ``method="auto"``, when an op has no
forward-mode AD (custom ``autograd.Function``s without ``jvp``; ``F.mse_loss`` with mean reduction,
pytorch#123996: write that loss out instead). Every probe:

- runs attention on the math SDPA backend (flash/efficient kernels have neither forward AD nor
  double backward);
- puts the model in the requested train/eval mode and restores every submodule's mode afterwards;
- runs on clones of the buffers, so train-mode BatchNorm uses batch statistics but the model's
  running statistics are left untouched;
- seeds the RNG per micro-batch inside a forked RNG state, so random layers (dropout) draw the same
  masks in every product (the operator stays one fixed symmetric matrix) and the training RNG
  streams are not advanced.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from optbench.diagnostics.vectors import FlatLayout

Method = Literal["auto", "jvp", "double_backward"]
LossFn = Callable[[nn.Module, Any], Tensor]


class _LossModule(nn.Module):
    """``loss_fn(model, batch)`` as a module, so ``functional_call`` can swap the model tensors."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Any) -> Tensor:
        return self.loss_fn(self.model, batch)


class LossHessian:
    """The Hessian of the weighted-mean probe loss w.r.t. (some of) a model's parameters.

    Use :meth:`matvec` (flat vector in, flat ``H v`` out) with the solvers in
    :mod:`optbench.diagnostics.eigen` and :mod:`optbench.diagnostics.trace`. The operator reads the
    model's current parameters at every call; ``num_hvps`` counts the products taken.

    Args:
        model: the network; its parameters and buffers are never modified.
        loss_fn: ``loss_fn(model, batch)`` -> scalar mean loss of one micro-batch (``Task.loss``).
        batches: the probe micro-batches.
        train: run the model in train mode (True) or eval mode (False) during the probe.
        weight_fn: how many units each micro-batch's loss averages over (``Task.loss_weight``);
            ``None`` weighs micro-batches equally.
        param_names: the parameters to differentiate w.r.t.; default: all with ``requires_grad``.
            The others are held fixed.
        method: ``"jvp"`` (forward-over-reverse), ``"double_backward"``, or ``"auto"``: ``"jvp"``,
            switching for good to ``"double_backward"`` (with a warning) if the first product fails.
        seed: micro-batch ``i`` runs with the RNG seeded to ``seed + i``.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batches: Sequence[Any],
        *,
        train: bool,
        weight_fn: Callable[[Any], float] | None = None,
        param_names: Iterable[str] | None = None,
        method: Method = "auto",
        seed: int = 0,
    ) -> None:
        if method not in ("auto", "jvp", "double_backward"):
            raise ValueError(f"unknown method {method!r}: use 'auto', 'jvp' or 'double_backward'")
        if not batches:
            raise ValueError("LossHessian needs at least one probe micro-batch")
        named = dict(model.named_parameters())
        if param_names is None:
            names = [name for name, p in named.items() if p.requires_grad]
        else:
            names = list(param_names)
            unknown = sorted(set(names) - set(named))
            if unknown:
                raise ValueError(f"not parameters of the model: {unknown}")
        if not names:
            raise ValueError("no parameters to differentiate w.r.t.")
        self._params = {name: named[name] for name in names}
        self._fixed = {name: p for name, p in named.items() if name not in self._params}
        kinds = {(p.dtype, p.device) for p in self._params.values()}
        if len(kinds) != 1:
            raise ValueError(
                f"parameters must share one dtype and device, got {sorted(map(str, kinds))}"
            )
        ((self.dtype, self.device),) = kinds
        self.layout = FlatLayout.of(self._params)
        self.model = model
        self.train = train
        self.method: Method = method
        self.seed = seed
        self.num_hvps = 0
        self._module = _LossModule(model, loss_fn)
        self._batches = list(batches)
        weights = [1.0 if weight_fn is None else float(weight_fn(b)) for b in self._batches]
        total = sum(weights)
        if total <= 0:
            raise ValueError(f"micro-batch weights must have a positive sum, got {weights}")
        self._fractions = [w / total for w in weights]

    @property
    def dim(self) -> int:
        return self.layout.dim

    def parameters(self) -> list[nn.Parameter]:
        """The differentiated parameters, in flat-vector order."""
        return list(self._params.values())

    def matvec(self, v: Tensor) -> Tensor:
        """``H v`` for a flat vector ``v``; counts one HVP."""
        if v.shape != (self.dim,):
            raise ValueError(f"expected a flat vector of shape ({self.dim},), got {tuple(v.shape)}")
        if self.method != "auto":
            hv = self._hvp(v, self.method)
        else:
            try:
                hv = self._hvp(v, "jvp")
                self.method = "jvp"
            except torch.OutOfMemoryError:
                raise
            except (RuntimeError, NotImplementedError) as err:
                warnings.warn(
                    f"forward-mode AD failed, using double backward for HVPs: {err}", stacklevel=2
                )
                self.method = "double_backward"
                hv = self._hvp(v, self.method)
        self.num_hvps += 1
        return hv

    __call__ = matvec

    def gradient(self) -> Tensor:
        """The flat gradient of the probe loss (not counted as an HVP)."""
        return self._accumulate(lambda b: torch.func.grad(self._loss)(self._primals(), b))

    def _loss(self, params: Mapping[str, Tensor], batch: Any) -> Tensor:
        # Buffers are cloned inside the transformed function: in-place updates (BatchNorm running
        # statistics) then hit tensors the transform owns, never the model's.
        tensors = {f"model.{name}": t for name, t in params.items()}
        for name, t in self.model.named_buffers():
            tensors[f"model.{name}"] = t.clone()
        for name, p in self._fixed.items():
            tensors[f"model.{name}"] = p.detach()
        return functional_call(self._module, tensors, (batch,))

    def _primals(self) -> dict[str, Tensor]:
        return {name: p.detach() for name, p in self._params.items()}

    def _hvp(self, v: Tensor, method: Method) -> Tensor:
        tangents = self.layout.unflatten(v)
        per_batch = self._hvp_jvp if method == "jvp" else self._hvp_double_backward
        return self._accumulate(lambda batch: per_batch(batch, tangents))

    def _hvp_jvp(self, batch: Any, tangents: Mapping[str, Tensor]) -> dict[str, Tensor]:
        grad_fn = torch.func.grad(self._loss)
        _, hv = torch.func.jvp(lambda p: grad_fn(p, batch), (self._primals(),), (dict(tangents),))
        return hv

    def _hvp_double_backward(self, batch: Any, tangents: Mapping[str, Tensor]) -> list[Tensor]:
        params = {name: t.requires_grad_() for name, t in self._primals().items()}
        inputs = list(params.values())
        grads = torch.autograd.grad(
            self._loss(params, batch), inputs, create_graph=True, materialize_grads=True
        )
        dot = sum((g * tangents[name]).sum() for name, g in zip(params, grads, strict=True))
        return list(torch.autograd.grad(dot, inputs, materialize_grads=True))

    def _accumulate(
        self, per_batch: Callable[[Any], Mapping[str, Tensor] | Sequence[Tensor]]
    ) -> Tensor:
        """``sum_b fraction_b * flatten(per_batch(b))``, inside the probe context."""
        total = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        with self._probe_context():
            for i, (batch, fraction) in enumerate(zip(self._batches, self._fractions, strict=True)):
                with _seeded_rng(self.device, self.seed + i):
                    total.add_(self.layout.flatten(per_batch(batch)), alpha=fraction)
        return total

    @contextlib.contextmanager
    def _probe_context(self) -> Iterator[None]:
        modes = [(m, m.training) for m in self.model.modules()]
        self.model.train(self.train)
        try:
            with sdpa_kernel(SDPBackend.MATH), torch.enable_grad():
                yield
        finally:
            for module, training in modes:
                module.training = training


@contextlib.contextmanager
def _seeded_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Seed every RNG of the CPU and of ``device``'s kind, and restore their states afterwards."""
    count = 0 if device.type == "cpu" else torch.get_device_module(device.type).device_count()
    kind = "cuda" if device.type == "cpu" else device.type
    with torch.random.fork_rng(devices=range(count), device_type=kind):
        torch.random.default_generator.manual_seed(seed)
        if count:
            torch.get_device_module(device.type).manual_seed_all(seed)
        yield
