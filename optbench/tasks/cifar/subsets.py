"""Choosing the examples a CIFAR run uses: a subset of classes, a held-out split, a subset.

Every selection keeps the archive's stored order, so ``subset=5000`` is the first 5,000 training
examples, as in Cohen et al. 2021 (locuslab/edge-of-stability, ``cifar10-5k``).
"""

from __future__ import annotations

import torch

from optbench.errors import OptbenchError
from optbench.tasks.cifar.data import Split


def keep_classes(split: Split, classes: list[int]) -> Split:
    """The examples of ``classes`` only, relabelled ``classes[i] -> i``."""
    relabel = torch.full((max(int(split.labels.max()), *classes) + 1,), -1, dtype=torch.int64)
    relabel[torch.tensor(classes)] = torch.arange(len(classes))
    kept = relabel[split.labels]
    chosen = torch.nonzero(kept >= 0).squeeze(1)
    return Split(split.images[chosen], kept[chosen])


def hold_out(split: Split, n: int) -> tuple[Split, Split]:
    """(the rest, the last ``n`` examples)."""
    if not 0 < n < len(split):
        raise OptbenchError(
            f"task.eval_split={n} must be between 1 and {len(split) - 1}: it holds out that many "
            f"of the {len(split)} training examples"
        )
    return Split(split.images[:-n], split.labels[:-n]), Split(split.images[-n:], split.labels[-n:])


def take_subset(split: Split, n: int, balanced: bool, classes: int) -> Split:
    """The first ``n`` examples, or with ``balanced`` the first ``n / classes`` of each class."""
    if not balanced:
        if n > len(split):
            raise OptbenchError(f"task.subset={n} exceeds the {len(split)} training examples")
        return Split(split.images[:n], split.labels[:n])
    per_class = n // classes
    chosen = []
    for label in range(classes):
        of_class = torch.nonzero(split.labels == label).squeeze(1)
        if len(of_class) < per_class:
            raise OptbenchError(
                f"task.subset={n} with subset_balanced needs {per_class} examples of class "
                f"{label}; the training split has {len(of_class)}"
            )
        chosen.append(of_class[:per_class])
    return split.take(torch.cat(chosen).sort().values)
