"""The contract between optbench and its plugins: what a plugin author reads, alone.

- A **task** subclasses :class:`Task` (data, model, loss, evaluation, probe batches) and tags
  each parameter with a :class:`ParamRole`; its training batches come as a :class:`BatchStream`.
- An **optimizer** is any ``torch.optim.Optimizer``. It receives one parameter group per role,
  tagged ``{"role": ...}``; it tells the loop what more it needs through the capabilities below
  (:func:`needs_create_graph`, :func:`has_train_eval_modes`, :func:`needs_whole_matrices`).
- A **logger** is a :class:`Sink`: it receives the metrics named below and, at the end, the
  run's :class:`Summary`.
- A **curvature probe** (``diagnostics``) is called with the task, model and optimizer.

Plugins import this module (and :mod:`optbench.errors`), never the runner. A run's statuses
and ``summary.json``'s fields are defined here and nowhere else.
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from optbench.errors import OptbenchError

if TYPE_CHECKING:  # importing the contract stays cheap: `optbench --help` needs no torch
    import torch
    from torch import nn

# -- parameter roles -----------------------------------------------------------------------------


class ParamRole(str, Enum):
    """What a parameter is. Matrix-aware optimizers (SWAN, GaLore, Muon) update ``matrix``
    parameters and hand the others to a fallback, the way their papers do."""

    MATRIX = "matrix"  # hidden 2-D weights (attention, MLP, conv kernels flattened to 2-D)
    EMBEDDING = "embedding"  # token or input embeddings
    HEAD = "head"  # the output layer (LM head, classifier)
    VECTOR = "vector"  # norm gains, biases and other 1-D parameters


# -- tasks ---------------------------------------------------------------------------------------

Batch = Any  # a micro-batch: whatever ``Task.loss`` accepts (tensors already on the device)


def share(rows: int, rank: int, world_size: int) -> slice:
    """The rows of process ``rank``'s equal share of a micro-batch of ``rows`` rows."""
    if rows % world_size:
        raise OptbenchError(
            f"a micro-batch of {rows} rows does not split evenly between {world_size} processes; "
            f"make the batch size (the micro-batch for LM tasks) a multiple of {world_size}"
        )
    size = rows // world_size
    return slice(rank * size, (rank + 1) * size)


class BatchStream(Protocol):
    """An endless, deterministic stream of step batches whose position can be saved and restored."""

    def __iter__(self) -> Iterator[list[Batch]]: ...

    def __next__(self) -> list[Batch]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


class Task(abc.ABC):
    """A training problem: data, a model, a loss and its evaluation.

    A task is built from ``configs/task/<name>.yaml`` (its ``_target_`` names the class, the other
    keys are constructor arguments). The constructor only checks its arguments, cheaply, so that
    a bad config fails before any data is loaded; :meth:`prepare` does the loading.

    One optimizer step consumes one *step batch*: a list of micro-batches (one, unless the task
    uses gradient accumulation). The runner back-propagates ``loss(mb) * loss_weight(mb) /
    sum(weights)`` for each micro-batch, so the step's loss is the weighted mean over the whole
    step batch, the same whatever the micro-batch size.
    """

    #: what ``perf/<unit>_per_second`` counts: ``"examples"`` or ``"tokens"``.
    work_unit: ClassVar[str] = "examples"

    @abc.abstractmethod
    def prepare(self, device: torch.device, dtype: torch.dtype) -> None:
        """Load or generate the data and place it on ``device`` (floating data in ``dtype``)."""

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """A freshly initialised model; the runner seeds torch before the call and moves it after.

        Must work before :meth:`prepare` and under ``torch.device("meta")``, so that memory can be
        estimated for any model size without loading data or allocating weights.
        """

    def param_roles(self, model: nn.Module) -> dict[str, ParamRole]:
        """The role of every parameter, by name. Default: 2-D weights are matrices, the rest vectors."""
        return {
            name: ParamRole.MATRIX if p.ndim == 2 else ParamRole.VECTOR
            for name, p in model.named_parameters()
        }

    @abc.abstractmethod
    def train_stream(self, seed: int) -> BatchStream:
        """The training batches, in an order fixed by ``seed``."""

    @abc.abstractmethod
    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The scalar training loss of one micro-batch (a mean over its ``loss_weight`` units)."""

    def loss_weight(self, batch: Batch) -> int:
        """How many units ``loss`` averages over (examples; non-pad tokens for LMs)."""
        return self.work(batch)

    def shard(self, batch: Batch, rank: int, world_size: int) -> Batch:
        """Process ``rank``'s share of the examples of ``batch`` when ``world_size`` processes
        train on each step batch (torchrun); ``loss_weight`` must add up over the shares.
        Default: the same rows of each tensor of a tuple (or NamedTuple) batch."""
        if not isinstance(batch, tuple):
            raise OptbenchError(f"{type(self).__name__} cannot split its batches between processes; "
                                "run it in a single process")
        rows = share(len(batch[0]), rank, world_size)
        parts = [t[rows] for t in batch]
        return type(batch)(*parts) if hasattr(batch, "_fields") else tuple(parts)

    @abc.abstractmethod
    def work(self, batch: Batch) -> int:
        """Work units (``work_unit``) in one micro-batch, for throughput and token counts."""

    def work_per_step(self) -> int | None:
        """Work units per optimizer step when every step has the same (for token budgets)."""
        return None

    def flops_per_work(self) -> float | None:
        """Training FLOPs (forward + backward) per work unit, for ``perf/mfu``; None if unknown."""
        return None

    @abc.abstractmethod
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Evaluation metrics, keyed ``eval/<name>``. Called under ``torch.no_grad`` in eval mode."""

    @abc.abstractmethod
    def probe_batches(self, seed: int, size: int | None = None) -> list[Batch]:
        """A fixed set of micro-batches for curvature probes: ``size`` examples (sequences for
        LMs) chosen by ``seed``, or the task's default set when ``size`` is None."""


# -- optimizers: what they need from the loop beyond backward() and step() -------------------------


def optimizer_parts(optimizer: torch.optim.Optimizer) -> list[torch.optim.Optimizer]:
    """The optimizers that act on the parameters: a router of several (one per role) exposes
    them as a ``parts`` mapping; any other optimizer is its own only part."""
    return list(getattr(optimizer, "parts", {"": optimizer}).values())


def needs_create_graph(optimizer: torch.optim.Optimizer) -> bool:
    """Hessian-based optimizers (AdaHessian, Sophia-H) differentiate through the gradient, so the
    backward pass must keep its graph (``backward(create_graph=True)``). They declare it by a
    ``hessian`` argument to ``step``, as pytorch-optimizer's do."""
    return any("hessian" in inspect.signature(part.step).parameters for part in optimizer_parts(optimizer))


def has_train_eval_modes(optimizer: torch.optim.Optimizer) -> bool:
    """Schedule-Free optimizers evaluate at averaged weights: they have ``eval()``, called before
    evaluation, and ``train()``, called before training steps."""
    return any(callable(getattr(part, "eval", None)) for part in optimizer_parts(optimizer))


def needs_whole_matrices(optimizer: torch.optim.Optimizer) -> bool:
    """Optimizers whose update of a matrix depends on the whole of it (Newton–Schulz, SVD
    projections, whitening, factored row/column moments) cannot run where each process holds a
    shard of each matrix (FSDP). They declare it by a true ``whole_matrices`` class attribute;
    ``torch.optim.Adafactor`` is one too."""
    import torch

    return any(getattr(part, "whole_matrices", False) or isinstance(part, torch.optim.Adafactor)
               for part in optimizer_parts(optimizer))


# -- a run's status and summary.json -----------------------------------------------------------------


class RunStatus(str, Enum):
    QUEUED = "queued"  # a sweep job not started yet
    RUNNING = "running"
    COMPLETED = "completed"
    DIVERGED = "diverged"  # stopped early: the loss went non-finite or past train.divergence_factor
    FAILED = "failed"  # refused, or crashed: see the summary's reason
    INTERRUPTED = "interrupted"  # stopped without finishing (killed, Ctrl-C): re-run to resume

    @property
    def finished(self) -> bool:
        """A finished run is done: re-running its config reports it and never recomputes it."""
        return self in (RunStatus.COMPLETED, RunStatus.DIVERGED)

    def __str__(self) -> str:
        return self.value


@dataclass
class Summary:
    """``summary.json``: written when a run starts (status ``running``, with its owner's host and
    pid) and replaced, atomically, when it ends."""

    status: RunStatus
    run_id: str | None = None
    task: str | None = None  # the task's and optimizer's config names (task=..., optimizer=...)
    optimizer: str | None = None
    seed: int | None = None
    run_dir: str | None = None
    host: str | None = None
    pid: int | None = None  # while running only
    slurm_job: str | None = None
    started: float | None = None  # Unix times
    finished: float | None = None
    reason: str | None = None  # why it diverged, failed or was interrupted
    steps: int | None = None
    work: int | None = None  # work units (examples or tokens) trained on
    wall_seconds: float | None = None  # over all sessions of the run
    final: dict[str, float] = field(default_factory=dict)  # the last value of every metric
    # when the run first met its target (``target.*``): metric, value, mode, reached, and the
    # interpolated step, work, training seconds and FLOPs (optbench.runner.target)
    target: dict[str, Any] | None = None
    warm_start: dict[str, Any] | None = None  # the run and step whose checkpoint it started from

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        return {key: value for key, value in data.items() if value is not None or key == "reason"}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Summary:
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {key: value for key, value in data.items() if key in known}
        return cls(**{**fields, "status": RunStatus(data["status"]), "final": data.get("final") or {}})


class Sink(Protocol):
    """Where metrics go (the console, metrics.jsonl, W&B). The runner calls ``close`` on every
    sink whatever way the run ends, so an external run (W&B) is always finished."""

    def log(self, step: int, metrics: dict[str, float]) -> None: ...

    def close(self, summary: Summary) -> None: ...


# -- metric names (metrics.jsonl and W&B keys) -------------------------------------------------------
# Every metrics.jsonl line has STEP, the work so far (TOKENS or EXAMPLES: the task's ``work_unit``) and
# TRAIN_SECONDS, so that the step, work and time at which a metric met a value can be read back.

STEP = "step"
TOKENS = "tokens"
EXAMPLES = "examples"
TRAIN_SECONDS = "perf/train_seconds"  # the training clock so far, over all sessions of the run
TRAIN_LOSS = "train/loss"  # mean training loss over the steps since the previous log
EVAL_LOSS = "eval/loss"  # tasks add their own eval/* (eval/ppl, eval/acc, eval/suboptimality, ...)
LR = "opt/lr"
GRAD_NORM = "opt/grad_norm"  # global gradient norm, before clipping
STEP_SECONDS = "perf/step_seconds"  # training clock: steps only, no evaluation, probes, checkpoints
MFU = "perf/mfu"  # model FLOPs utilisation against the device's peak bf16 rate (GPU only)
PARAM_BYTES = "mem/param_bytes"
GRAD_BYTES = "mem/grad_bytes"
OPTIMIZER_STATE_BYTES = "mem/optimizer_state_bytes"
PEAK_BYTES = "mem/peak_bytes"  # peak device memory of training steps (probes counted apart)
PROBE_PEAK_BYTES = "mem/probe_peak_bytes"
LAMBDA_MAX = "sharpness/lambda_max"  # top Hessian eigenvalue on the probe batches
THRESHOLD = "sharpness/threshold"  # the optimizer's stability threshold (2/η for GD)
PRECONDITIONED = "sharpness/preconditioned"  # λ_max(P⁻¹H) for Adam-type optimizers
TRACE = "curvature/trace"
EVAL_EMA_PREFIX = "eval_ema/"  # evaluation of the EMA of the weights (train.ema): eval_ema/loss, ...


def throughput(work_unit: str) -> str:
    """``perf/examples_per_second`` or ``perf/tokens_per_second``."""
    return f"perf/{work_unit}_per_second"
