"""Heavy-tailed class imbalance: a linear softmax classifier on synthetic data whose class
frequencies follow a Zipf law (docs/references.md §4.3).

Kunstner, Yadav, Milligan, Schmidt, Bietti, "Heavy-Tailed Class Imbalance and Why Adam Outperforms
Gradient Descent on Language Models" (NeurIPS 2024, arXiv 2402.19449): with many classes of
Zipf-like frequency, gradient descent makes slow progress on the rare classes while Adam and sign
descent do not, and a linear model on data "whose only property is a heavy-tailed class
distribution" reproduces it.

The data follows the paper's construction (its code, ``optexp``'s ``BalancedXImbalancedY``):

* Class counts are fixed, not sampled. Class k = 1..c (most frequent first) has
  ``frequencies: zipf``:    nₖ = round(top / k^s),
  ``frequencies: dyadic``:  nₖ = round(top / (2^⌊log₂ k⌋)^s), the Zipf law in steps of powers of
  two: 2^i classes share each level i. With s = 1, c = 2^m − 1 and top = 2^m this is exactly the
  paper's data set of size m: n = m·2^m examples, each level one m-th of the data (the paper's
  runs use m = 11: 2047 classes, 22,528 examples).
* Inputs do not depend on the label: i.i.d. uniform on [0, 1) (the paper's, ``inputs: uniform``)
  or N(0, 1) (``inputs: gaussian``, the paper's variant), drawn on the CPU from ``data_seed`` in
  float32 (the same numbers whatever the device or precision). The input dimension defaults to
  d = n + c + 1 (the paper's (m + 1)·2^m): more features than examples, so the data is separable
  and the loss can go to zero; only memorisation can fit a rare class.
* The model is ``Linear(d, c, bias=False)`` started at zero (every class starts at loss log c),
  trained on the mean cross-entropy: full batch (gradient descent) by default, or seeded
  minibatches with ``batch_size``.

Frequency groups (what ``evaluate`` reports per group): the classes, most frequent first, are cut
into ``groups`` contiguous groups of about equal share of the *examples*, as the paper's Figure 1
groups words into ≈10% of the data each: class k goes to group ⌊groups · (examples of the classes
before k) / n⌋, and the groups that receive no class are skipped (renumbered), so a very frequent
class can be a group by itself. For ``dyadic`` data with ``groups`` = m the groups are the m levels.
``eval/loss_group_g`` is the mean loss over the examples of group g (g = 0 most frequent), so
``eval/loss`` = Σ_g (n_g / n) · ``eval/loss_group_g``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from optbench.contract import EVAL_LOSS, Batch
from optbench.errors import OptbenchError
from optbench.tasks.linear import LinearTask

Frequencies = Literal["zipf", "dyadic"]
Inputs = Literal["uniform", "gaussian"]


def class_counts(classes: int, top: int, exponent: float, frequencies: Frequencies) -> np.ndarray:
    """Examples per class, most frequent first (see the module docstring); may contain zeros."""
    rank = np.arange(1, classes + 1, dtype=np.float64)
    if frequencies == "dyadic":
        rank = 2.0 ** np.floor(np.log2(rank))
    return np.rint(top * rank ** -exponent).astype(np.int64)


def frequency_groups(counts: np.ndarray, groups: int) -> np.ndarray:
    """The group of each class: contiguous groups of about equal share of the examples."""
    before = np.cumsum(counts) - counts
    raw = np.floor(groups * before / counts.sum()).astype(np.int64)
    return np.unique(raw, return_inverse=True)[1].reshape(-1)


@dataclass(frozen=True)
class Group:
    """One frequency group: classes ``first``..``last`` (1-based ranks) and their examples."""

    index: int
    first: int
    last: int
    examples: int
    share: float  # of all examples
    most: int  # examples of its most frequent class
    least: int  # examples of its least frequent class

    @property
    def label(self) -> str:
        return f"class {self.first}" if self.first == self.last else f"classes {self.first}–{self.last}"


class HeavyTail(LinearTask):
    """A linear softmax classifier on Zipf-imbalanced synthetic classes (Kunstner et al., 2024)."""

    def __init__(
        self,
        classes: int = 100,
        top: int = 100,
        exponent: float = 1.0,
        frequencies: Frequencies = "zipf",
        d: int | None = None,
        inputs: Inputs = "uniform",
        groups: int = 10,
        data_seed: int = 0,
        batch_size: int | None = None,
    ) -> None:
        if classes < 2:
            raise OptbenchError(f"task.classes={classes} must be at least 2")
        if exponent < 0:
            raise OptbenchError(f"task.exponent={exponent} must be >= 0 (class k has frequency ∝ 1/k^s)")
        if frequencies not in ("zipf", "dyadic"):
            raise OptbenchError(f"task.frequencies={frequencies}: accepted values are zipf, dyadic")
        if inputs not in ("uniform", "gaussian"):
            raise OptbenchError(f"task.inputs={inputs}: accepted values are uniform, gaussian")
        counts = class_counts(classes, top, exponent, frequencies)
        if counts[-1] < 1:
            rarest = classes if frequencies == "zipf" else 2 ** int(np.log2(classes))
            needed = int(0.5 * rarest**exponent) + 1  # rounds to one example
            raise OptbenchError(
                f"task.top={top} is too small: with task.classes={classes} and task.exponent={exponent} "
                f"the rarest class would have no example; use task.top >= {needed}"
            )
        if d is not None and d < 1:
            raise OptbenchError(f"task.d={d} must be >= 1, or null for n + classes + 1")
        if not 1 <= groups <= classes:
            raise OptbenchError(f"task.groups={groups} must be between 1 and task.classes={classes}")
        n = int(counts.sum())
        if batch_size is not None and not 1 <= batch_size <= n:
            raise OptbenchError(
                f"task.batch_size={batch_size} must be between 1 and the {n} examples, or null for full batch"
            )
        self.classes, self.inputs, self.data_seed, self.batch_size = classes, inputs, data_seed, batch_size
        self.counts = counts
        self.n = n
        self.d = d if d is not None else n + classes + 1
        self.class_group = frequency_groups(counts, groups)

    # -- the data -------------------------------------------------------------------------------
    def group_table(self) -> list[Group]:
        """The frequency groups, most frequent first (cheap: no data is generated)."""
        table = []
        for g in range(int(self.class_group.max()) + 1):
            members = np.flatnonzero(self.class_group == g)
            examples = int(self.counts[members].sum())
            table.append(Group(g, int(members[0]) + 1, int(members[-1]) + 1, examples,
                               examples / self.n, int(self.counts[members].max()),
                               int(self.counts[members].min())))
        return table

    def generate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) on the CPU: x float32 (n, d), y int64 (n,) sorted by class."""
        generator = torch.Generator().manual_seed(self.data_seed)
        draw = torch.rand if self.inputs == "uniform" else torch.randn
        x = draw(self.n, self.d, generator=generator, dtype=torch.float32)
        y = torch.repeat_interleave(torch.arange(self.classes), torch.as_tensor(self.counts))
        return x, y

    def prepare(self, device: torch.device, dtype: torch.dtype) -> None:
        x, y = self.generate()
        self.x = x.to(device=device, dtype=dtype)
        self.y = y.to(device)
        self.example_group = torch.as_tensor(self.class_group, device=device)[self.y]
        self.group_examples = torch.bincount(self.example_group).double()

    # -- the model ------------------------------------------------------------------------------
    def linear_shape(self) -> tuple[int, int]:
        return self.d, self.classes

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x).float(), y)

    def work_per_step(self) -> int:
        return self.batch_size or self.n

    def flops_per_work(self) -> float:
        """Forward x·Wᵀ (2dc) and the weight gradient (2dc); the data needs no gradient."""
        return 4.0 * self.d * self.classes

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Training loss and accuracy on the whole data set, and the loss per frequency group."""
        logits = model(self.x).float()
        losses = F.cross_entropy(logits, self.y, reduction="none").double()
        per_group = torch.zeros_like(self.group_examples).index_add_(0, self.example_group, losses)
        per_group = (per_group / self.group_examples).tolist()
        return {
            EVAL_LOSS: losses.mean().item(),
            "eval/acc": (logits.argmax(1) == self.y).double().mean().item(),
            **{f"eval/loss_group_{g}": value for g, value in enumerate(per_group)},
        }
