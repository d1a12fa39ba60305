"""Hessian-vector products of a task's loss over a fixed set of probe micro-batches.

The loss is the weighted mean of the task contract, ``L = sum_b loss(b) * w(b) / sum_b w(b)``, so
``H v = sum_b H_b v * w(b) / sum_b w(b)`` is accumulated one micro-batch at a time.

Two exact paths (Pearlmutter 1994; the ``torch.func`` tutorial "Jacobians, Hessians, hvp, vhp"):

- double backward: the micro-batch's gradient with ``create_graph=True``, then ``H_b v`` as the
  vector-Jacobian product of that gradient with ``v``. The gradient graph does not depend on
  ``v``, so it is built once per micro-batch and kept for every later product at the same weights:
  a product is then one backward through it, not a forward and two backwards. Graphs are kept while
  the tensors they save (counted by ``saved_tensors_hooks``) fit a memory budget, by default half
  the device's free memory at the first product; micro-batches past it are rebuilt every product,
  which yields the same numbers. Changing any parameter or buffer (in place or by assignment) drops
  the kept graphs.
- forward-over-reverse: ``torch.func.jvp`` of ``torch.func.grad``, through ``functional_call``;
  nothing is kept, so a product repeats the forward and backward.

``method="auto"`` (the default) is double backward, switching for good to forward-over-reverse
(with a warning) if its first product fails because an op's backward has no derivative of its own;
any other error (a device mismatch, out of memory) is raised.
The rule is fixed rather than timed: the two paths differ in rounding, so a timed choice would make
a probe's numbers depend on machine load. ``benchmarks/sharpness.py`` measures them on CPU (tanh
MLP, 4 micro-batches): a product costs 1.6 gradients with kept graphs, 2.7 rebuilding them, 3.4 by
forward-over-reverse. On accelerators (not measured) kept graphs save the same forward and backward
per product. Forward-over-reverse also fails on some ops (custom ``autograd.Function``s without
``jvp``; ``F.mse_loss`` with mean reduction, pytorch#123996). Every probe:

- runs attention on the math SDPA backend (flash/efficient kernels have neither forward AD nor
  double backward);
- puts the model in the requested train/eval mode and restores every submodule's mode afterwards;
- runs on clones of the buffers, so train-mode BatchNorm uses batch statistics but the model's
  running statistics are left untouched;
- seeds the RNG per micro-batch inside a forked RNG state, so random layers (dropout) draw the same
  masks in every product (the operator stays one fixed symmetric matrix; a kept graph keeps its
  masks) and the training RNG streams are not advanced.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Graph:
    """One micro-batch's gradient, built with ``create_graph=True`` w.r.t. ``inputs``."""

    inputs: list[Tensor]
    grads: list[Tensor]
    nbytes: int  # what keeping it holds: the tensors its nodes saved, and the gradients


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
        method: ``"double_backward"``, ``"jvp"`` (forward-over-reverse), or ``"auto"``: double
            backward, switching for good to ``"jvp"`` (with a warning) if the first product fails
            for want of a second derivative.
        seed: micro-batch ``i`` runs with the RNG seeded to ``seed + i``.
        cache_bytes: memory for kept gradient graphs (double backward); ``None``: half the
            device's free memory at the first product; 0 keeps none.
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
        cache_bytes: int | None = None,
    ) -> None:
        if method not in ("auto", "jvp", "double_backward"):
            raise ValueError(f"unknown method {method!r}: use 'auto', 'jvp' or 'double_backward'")
        if not batches:
            raise ValueError("LossHessian needs at least one probe micro-batch")
        if cache_bytes is not None and cache_bytes < 0:
            raise ValueError(f"cache_bytes must be >= 0 or None, got {cache_bytes}")
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
        self.cache_bytes = cache_bytes
        self._graphs: dict[int, _Graph] = {}
        self._budget: int | None = None  # bytes left for kept graphs, fixed at the first build
        # the parameters and buffers the kept graphs were built at, with their versions
        self._weights_seen: list[tuple[Tensor, int]] = []
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
                hv = self._hvp(v, "double_backward")
                self.method = "double_backward"
            except (RuntimeError, NotImplementedError) as err:
                if not _no_second_derivative(err):
                    raise  # a real error (device mismatch, out of memory, a CUDA fault)
                warnings.warn(
                    f"double backward failed, using forward-over-reverse for HVPs: {err}",
                    stacklevel=2,
                )
                self._drop_graphs()
                self.method = "jvp"
                hv = self._hvp(v, self.method)
        self.num_hvps += 1
        return hv

    __call__ = matvec

    def gradient(self) -> Tensor:
        """The flat gradient of the probe loss (not counted as an HVP)."""
        return self._accumulate(lambda _, b: torch.func.grad(self._loss)(self._primals(), b))

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
        if method == "jvp":
            return self._accumulate(lambda _, batch: self._hvp_jvp(batch, tangents))
        if self._graphs and not self._weights_unchanged():
            self._drop_graphs()
        return self._accumulate(lambda i, batch: self._hvp_double_backward(i, batch, tangents))

    def _hvp_jvp(self, batch: Any, tangents: Mapping[str, Tensor]) -> dict[str, Tensor]:
        grad_fn = torch.func.grad(self._loss)
        _, hv = torch.func.jvp(lambda p: grad_fn(p, batch), (self._primals(),), (dict(tangents),))
        return hv

    def _hvp_double_backward(
        self, i: int, batch: Any, tangents: Mapping[str, Tensor]
    ) -> list[Tensor]:
        graph = self._graphs[i] if i in self._graphs else self._build(i, batch)
        # Gradients that do not depend on the parameters (a layer the loss is linear in) add nothing.
        live = [k for k, g in enumerate(graph.grads) if g.requires_grad]
        if not live:
            return [torch.zeros_like(t) for t in graph.inputs]
        return list(
            torch.autograd.grad(
                [graph.grads[k] for k in live],
                graph.inputs,
                [tangents[self.layout.names[k]] for k in live],
                retain_graph=i in self._graphs,
                allow_unused=True,
                materialize_grads=True,
            )
        )

    def _build(self, i: int, batch: Any) -> _Graph:
        """Micro-batch ``i``'s gradient graph, kept if it fits what is left of the budget."""
        if self._budget is None:
            free = _free_bytes(self.device) // 2
            self._budget = free if self.cache_bytes is None else self.cache_bytes
        inputs = [t.requires_grad_() for t in self._primals().values()]
        ours = {t.untyped_storage().data_ptr() for t in inputs}  # the parameters' memory
        saved: dict[int, int] = {}

        def pack(t: Tensor) -> Tensor:
            storage = t.untyped_storage()
            if storage.data_ptr() not in ours:
                saved[storage.data_ptr()] = storage.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = self._loss(dict(zip(self.layout.names, inputs, strict=True)), batch)
            grads = torch.autograd.grad(loss, inputs, create_graph=True, materialize_grads=True)
        nbytes = sum(saved.values()) + sum(g.nbytes for g in grads)
        graph = _Graph(inputs, list(grads), nbytes)
        if nbytes <= self._budget:
            self._budget -= nbytes
            self._graphs[i] = graph
            if not self._weights_seen:
                self._weights_seen = self._weights()
        return graph

    def _weights(self) -> list[tuple[Tensor, int]]:
        """Every parameter and buffer (an alias, which keeps its memory from being reused) and its
        version counter, which in-place updates advance."""
        tensors = [*self.model.parameters(), *self.model.buffers()]
        return [(t.detach(), t._version) for t in tensors]

    def _weights_unchanged(self) -> bool:
        now = [*self.model.parameters(), *self.model.buffers()]
        return len(now) == len(self._weights_seen) and all(
            t.data_ptr() == seen.data_ptr() and t._version == version
            for t, (seen, version) in zip(now, self._weights_seen, strict=True)
        )

    def _drop_graphs(self) -> None:
        self._graphs.clear()
        self._budget = None
        self._weights_seen = []

    def _accumulate(
        self, per_batch: Callable[[int, Any], Mapping[str, Tensor] | Sequence[Tensor]]
    ) -> Tensor:
        """``sum_b fraction_b * flatten(per_batch(b, batch_b))``, inside the probe context."""
        total = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        with self._probe_context():
            for i, (batch, fraction) in enumerate(zip(self._batches, self._fractions, strict=True)):
                with _seeded_rng(self.device, self.seed + i):
                    total.add_(self.layout.flatten(per_batch(i, batch)), alpha=fraction)
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


def _no_second_derivative(err: Exception) -> bool:
    """Whether ``err`` says an op's backward cannot be differentiated: a ``NotImplementedError``
    (``TORCH_CHECK_NOT_IMPLEMENTED``, a custom backward that raises it), or autograd's
    ``RuntimeError`` for a backward op without a derivative formula ("derivative for
    aten::... is not implemented") or for a ``once_differentiable`` function differentiated
    twice. Other errors, such as a device mismatch, are not a reason to change path."""
    if isinstance(err, NotImplementedError):
        return True
    message = str(err)
    return ("derivative for" in message and "is not implemented" in message) or (
        "differentiate twice" in message
    )


def _free_bytes(device: torch.device) -> int:
    """Free memory on ``device``: available RAM on CPU, the driver's count on accelerators that
    report one (CUDA, XPU), else 0 (nothing is kept)."""
    if device.type == "cpu":
        import psutil  # only when a probe keeps graphs: not on every run's start-up

        return psutil.virtual_memory().available
    mem_get_info = getattr(torch.get_device_module(device.type), "mem_get_info", None)
    return 0 if mem_get_info is None else mem_get_info(device)[0]


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
