"""CIFAR-10/100 image classification (configs/task/cifar10*.yaml, cifar100.yaml).

The whole training split lives on the device as uint8; each step's batch is gathered, augmented
(random crop and flip) and normalised there (see :mod:`optbench.tasks.cifar.stream`). ``loss=mse``
is Cohen et al.'s square loss, ``0.5 * ||f(x) - onehot(y)||² `` averaged over examples
(locuslab/edge-of-stability ``SquaredLoss``), written out by hand: ``F.mse_loss`` with mean
reduction has no forward-mode AD (pytorch#123996), which the curvature probes use.
Normalisation uses the standard per-channel CIFAR mean and std, where Cohen et al. standardise
each pixel with the training set's statistics.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from optbench.contract import EVAL_LOSS, ParamRole, Task
from optbench.errors import OptbenchError
from optbench.tasks.cifar import models
from optbench.tasks.cifar.augment import MEAN_STD, Augment, Normalize, PadMode
from optbench.tasks.cifar.data import Dataset, Split, load_archive, num_classes, synthetic
from optbench.tasks.cifar.stream import CifarBatch, CifarStream, micro_batches
from optbench.tasks.cifar.subsets import hold_out, keep_classes, take_subset

_NOT_PREPARED = "CifarTask.prepare() must run before the data is used"
WHITEN_IMAGES = 5000  # airbench whitens with the patches of this many training images


class CifarTask(Task):
    """Image classification on CIFAR-10/100 (``data: archive``) or a synthetic stand-in.

    Data: ``subset`` keeps the first N training examples (``subset_balanced``: N/C of each
    class); ``classes`` keeps those classes, relabelled 0..C-1 in the order given;
    ``eval_split`` is ``test`` or a number of training examples held out (the last ones, before
    ``subset``). Steps: ``batch_size`` examples from a per-epoch shuffle, or with
    ``full_batch`` the whole training subset; ``micro_batch`` splits a step (and evaluation
    and probes) into micro-batches. ``augment`` (default: on unless ``full_batch``) crops with
    ``crop_pad`` pixels of ``pad_mode`` padding and flips. ``probe_size`` training examples
    (default: all of them with ``full_batch``) make the curvature-probe set.
    """

    work_unit = "examples"

    def __init__(
        self,
        dataset: Dataset = "cifar10",
        data: Literal["archive", "synthetic"] = "archive",
        root: str = "data/cifar",
        synthetic_train: int = 10_000,
        synthetic_test: int = 2_000,
        data_seed: int = 0,
        model: models.Model = "resnet18",
        width: int | None = None,
        depth: int | None = None,
        activation: models.Activation | None = None,
        whiten: bool | None = None,
        loss: Literal["ce", "mse"] = "ce",
        batch_size: int = 128,
        full_batch: bool = False,
        micro_batch: int | None = None,
        augment: bool | None = None,
        crop_pad: int = 4,
        pad_mode: PadMode = "zeros",
        subset: int | None = None,
        subset_balanced: bool = False,
        classes: list[int] | None = None,
        eval_split: Literal["test"] | int = "test",
        probe_size: int | None = None,
    ) -> None:
        total = num_classes(dataset)
        width_default, depth_default, activation_default = models.DEFAULTS[model]
        for key, value, default in (("depth", depth, depth_default),
                                    ("activation", activation, activation_default)):
            if value is not None and default is None:
                raise OptbenchError(f"task.{key} applies to model=fc|cnn only; got model={model}")
        if whiten is not None and model != "airbench":
            raise OptbenchError(f"task.whiten applies to model=airbench only; got model={model}")
        positive = {"width": width, "depth": depth, "batch_size": batch_size,
                    "micro_batch": micro_batch, "subset": subset, "probe_size": probe_size,
                    "synthetic_train": synthetic_train, "synthetic_test": synthetic_test}
        for key, value in positive.items():
            if value is not None and value < 1:
                raise OptbenchError(f"task.{key}={value} must be a positive integer")
        if model == "cnn" and depth is not None and depth > models.MAX_CNN_DEPTH:
            raise OptbenchError(f"task.depth={depth} must be at most {models.MAX_CNN_DEPTH} "
                                "for model=cnn (each layer halves the image)")
        if not 0 <= crop_pad <= 16:
            raise OptbenchError(f"task.crop_pad={crop_pad} must be between 0 and 16 pixels")
        if classes is not None and (len(classes) < 2 or len(set(classes)) != len(classes)
                                    or not all(0 <= c < total for c in classes)):
            raise OptbenchError(f"task.classes={classes} must list at least two distinct "
                                f"class indices in [0, {total - 1}] ({dataset})")
        self.classes = classes
        self.num_classes = len(classes) if classes else total
        if subset_balanced and (subset is None or subset % self.num_classes):
            raise OptbenchError(f"task.subset_balanced needs task.subset to be a multiple of the "
                                f"{self.num_classes} classes; got subset={subset}")
        self.dataset, self.source, self.root, self.data_seed = dataset, data, root, data_seed
        self.synthetic_sizes = (synthetic_train, synthetic_test)
        self.model_name, self.whiten = model, model == "airbench" and whiten is not False
        self.width = width or width_default
        self.depth = depth or depth_default
        self.activation = activation or activation_default
        self.loss_kind, self.full_batch = loss, full_batch
        self.batch_size = None if full_batch else batch_size
        self.micro_batch = micro_batch
        use_augment = not full_batch if augment is None else augment
        self.augment = Augment(crop_pad, pad_mode) if use_augment else None
        self.subset, self.subset_balanced, self.eval_split = subset, subset_balanced, eval_split
        self.probe_size = probe_size
        self._train: Split | None = None
        self._eval: Split | None = None

    # --- data ---

    def _splits(self) -> tuple[Split, Split]:
        if self.source == "synthetic":
            return synthetic(num_classes(self.dataset), *self.synthetic_sizes, self.data_seed)
        return load_archive(self.root, self.dataset)

    def prepare(self, device: torch.device, dtype: torch.dtype) -> None:
        """Read (or generate) the data, select the examples, and hold them on ``device``."""
        train, test = self._splits()
        if self.classes:
            train, test = keep_classes(train, self.classes), keep_classes(test, self.classes)
        if self.eval_split != "test":
            train, test = hold_out(train, self.eval_split)
        if self.subset is not None:
            train = take_subset(train, self.subset, self.subset_balanced, self.num_classes)
        if self.batch_size is not None and self.batch_size > len(train):
            raise OptbenchError(f"task.batch_size={self.batch_size} exceeds the {len(train)} "
                                "training examples; lower it or set task.full_batch=true")
        self._train, self._eval = train.to(device), test.to(device)
        self.normalize = Normalize(*MEAN_STD[self.dataset], dtype, torch.device(device))

    @property
    def train_split(self) -> Split:
        if self._train is None:
            raise RuntimeError(_NOT_PREPARED)
        return self._train

    @property
    def eval_set(self) -> Split:
        if self._eval is None:
            raise RuntimeError(_NOT_PREPARED)
        return self._eval

    def _chunk(self) -> int:
        """Micro-batch size for evaluation and probes (no gradients kept between chunks)."""
        return self.micro_batch or 1000

    def train_stream(self, seed: int) -> CifarStream:
        split = self.train_split
        micro = self.micro_batch or self.batch_size or len(split)
        return CifarStream(split, self.normalize, self.augment, seed, self.batch_size, micro)

    def probe_batches(self, seed: int, size: int | None = None) -> list[CifarBatch]:
        """``size`` training examples (default ``probe_size``; with ``full_batch``, all of them;
        else 512) drawn by ``seed``, not augmented, in micro-batches. All examples when ``size``
        covers the training set, in their stored order."""
        split = self.train_split
        size = size or self.probe_size or (len(split) if self.full_batch else 512)
        if size < len(split):
            chosen = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
            split = split.take(chosen[:size].to(split.labels.device))
        return list(micro_batches(split, self.normalize, self._chunk()))

    # --- model and loss ---

    def build_model(self) -> nn.Module:
        """A fresh network; airbench's stem is whitened from the training images once they are
        loaded (a model built before :meth:`prepare` or on the meta device keeps its init)."""
        model = models.build(self.model_name, self.num_classes, self.width, self.depth,
                             self.activation, self.whiten)
        if self.whiten and self._train is not None and not model.stem.weight.is_meta:
            images = self.normalize(self._train.images[:WHITEN_IMAGES])
            model.whiten_from(images)
        return model

    def param_roles(self, model: nn.Module) -> dict[str, ParamRole]:
        """Input layer ``embedding``, classifier ``head``, hidden linear weights and conv kernels
        ``matrix`` (conv kernels stay 4-D: matrix optimizers view them as out × in·k·k, as Muon
        does), biases and BatchNorm parameters ``vector``."""
        return models.param_roles(model)

    def loss(self, model: nn.Module, batch: CifarBatch) -> torch.Tensor:
        return self._loss_sum(model(batch.images), batch.labels) / len(batch.labels)

    def _loss_sum(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if outputs.dtype in (torch.float16, torch.bfloat16):
            outputs = outputs.float()
        if self.loss_kind == "ce":
            return F.cross_entropy(outputs, labels, reduction="sum")
        targets = F.one_hot(labels, self.num_classes).to(outputs.dtype)
        return 0.5 * (outputs - targets).square().sum()

    def work(self, batch: CifarBatch) -> int:
        return len(batch.labels)

    def work_per_step(self) -> int | None:
        if self.batch_size is not None:
            return self.batch_size
        return None if self._train is None else len(self._train)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        total = torch.zeros((), dtype=torch.float64, device=self.eval_set.labels.device)
        correct = torch.zeros((), dtype=torch.int64, device=total.device)
        for batch in micro_batches(self.eval_set, self.normalize, self._chunk()):
            outputs = model(batch.images)
            total += self._loss_sum(outputs, batch.labels).double()
            correct += (outputs.argmax(1) == batch.labels).sum()
        n = len(self.eval_set)
        return {EVAL_LOSS: total.item() / n, "eval/acc": correct.item() / n}
