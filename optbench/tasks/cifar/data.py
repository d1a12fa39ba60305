"""CIFAR-10/100 images and labels: from the python-pickle archives, a torchvision download, or
a synthetic stand-in in the same representation.

The archives (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html; the layout that
torchvision's ``CIFAR10``/``CIFAR100`` download and unpack under their ``root``):
``cifar-10-batches-py/`` holds ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``;
``cifar-100-python/`` holds ``train`` and ``test``. Each file is a pickled dict whose ``b"data"``
is a uint8 N×3072 array (rows are 3×32×32 images, channel-major) and whose ``b"labels"``
(CIFAR-10) or ``b"fine_labels"`` (CIFAR-100) lists the classes.

Every split is a :class:`Split`: uint8 N×3×32×32 images and int64 labels.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.nn import functional as F

from optbench.errors import OptbenchError

Dataset = Literal["cifar10", "cifar100"]
IMAGE_SHAPE = (3, 32, 32)


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # uint8, N×3×32×32
    labels: torch.Tensor  # int64, N

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: torch.Tensor) -> Split:
        """The examples ``indices`` (int64), copied (``index_select``: on CPU a row copy, where
        ``images[indices]`` indexes pixel by pixel, some fifty times slower)."""
        return Split(self.images.index_select(0, indices), self.labels.index_select(0, indices))

    def to(self, device: torch.device) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class Archive:
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: bytes
    classes: int
    torchvision_name: str


ARCHIVES: dict[str, Archive] = {
    "cifar10": Archive(
        "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
        b"labels", 10, "CIFAR10",
    ),
    "cifar100": Archive("cifar-100-python", ("train",), ("test",), b"fine_labels", 100, "CIFAR100"),
}


def num_classes(dataset: Dataset) -> int:
    return ARCHIVES[dataset].classes


def load_archive(root: str | Path, dataset: Dataset) -> tuple[Split, Split]:
    """(train, test) from ``root``; torchvision downloads the files there first if missing."""
    archive = ARCHIVES[dataset]
    folder = Path(root) / archive.folder
    if not all((folder / name).is_file() for name in archive.train_files + archive.test_files):
        _download(Path(root), archive)
    return (
        _read(folder, archive.train_files, archive.label_key),
        _read(folder, archive.test_files, archive.label_key),
    )


def _download(root: Path, archive: Archive) -> None:
    folder = root / archive.folder
    expected = f"{folder}/ ({', '.join(archive.train_files + archive.test_files)})"
    try:
        import torchvision.datasets
    except ImportError:
        raise OptbenchError(
            f"{archive.torchvision_name} not found: expected the python-version archive unpacked "
            f"at {expected}; place it there, set task.root, or install torchvision to download it"
        ) from None
    dataset_class = getattr(torchvision.datasets, archive.torchvision_name)
    try:
        for train in (True, False):
            dataset_class(str(root), train=train, download=True)
    except Exception as err:  # no network, a bad checksum, a read-only root  # noqa: BLE001
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise OptbenchError(
            f"{archive.torchvision_name} not found at {expected} and torchvision could not "
            f"download it ({reason}); place the files there or set task.root"
        ) from None


def _read(folder: Path, names: tuple[str, ...], label_key: bytes) -> Split:
    images, labels = [], []
    for name in names:
        path = folder / name
        try:
            with open(path, "rb") as file:
                entry = pickle.load(file, encoding="bytes")  # the archive's own format
            data = np.asarray(entry[b"data"], dtype=np.uint8)
            targets = np.asarray(entry[label_key], dtype=np.int64)
        except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError) as err:
            raise OptbenchError(f"{path} is not a CIFAR python-pickle batch ({err!r})") from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(targets):
            raise OptbenchError(
                f"{path}: expected N×3072 uint8 images and N labels, got data of shape "
                f"{data.shape} and {len(targets)} labels"
            )
        images.append(data.reshape(-1, *IMAGE_SHAPE))
        labels.append(targets)
    return Split(torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels)))


def synthetic(classes: int, train: int, test: int, seed: int) -> tuple[Split, Split]:
    """A stand-in for CIFAR, generated in memory from ``seed``, with balanced labels in random
    order. Each class is a random colour template; each image adds smooth noise to its class's
    template, then a little pixel noise. Template and smooth noise both live on an 8×8 grid
    upsampled to 32×32, so, as in natural images, neighbouring pixels are correlated (a small
    network cannot memorise the noise at once, and small crops keep the class recognisable),
    and the classes overlap only slightly: nearly separable, but fitted gradually, with the
    progressive sharpening of Cohen et al. under full-batch GD."""
    generator = torch.Generator().manual_seed(seed)

    def smooth(*shape: int) -> torch.Tensor:
        coarse = torch.randn(*shape, 3, 8, 8, generator=generator)
        return F.interpolate(coarse, size=IMAGE_SHAPE[1:], mode="bilinear", align_corners=False)

    templates = 128 + 28 * smooth(classes)  # pixel std about 20 grey levels around mid-grey

    def split(n: int) -> Split:
        labels = torch.randperm(n, generator=generator) % classes
        noise = 96 * smooth(n) + 8 * torch.randn(n, *IMAGE_SHAPE, generator=generator)  # std ~67
        images = (templates[labels] + noise).round_().clamp_(0, 255).to(torch.uint8)
        return Split(images, labels)

    return split(train), split(test)
