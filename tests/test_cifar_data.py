"""CIFAR data: the on-disk pickle archives, the missing-files error, synthetic data, subsets."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from optbench.errors import OptbenchError
from optbench.tasks.cifar.data import Split, load_archive, synthetic
from optbench.tasks.cifar.subsets import hold_out, keep_classes, take_subset


def _dump(path: Path, entry: dict) -> None:
    with open(path, "wb") as file:
        pickle.dump(entry, file, protocol=2)


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def write_cifar10(root: Path, per_batch: int = 6, test: int = 4) -> tuple[np.ndarray, ...]:
    """A small archive in torchvision's on-disk CIFAR-10 format; returns what it holds."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_x, train_y = [], []
    for i in range(1, 6):
        x, y = _images(rng, per_batch), rng.integers(0, 10, per_batch).tolist()
        _dump(folder / f"data_batch_{i}", {
            b"batch_label": f"training batch {i} of 5".encode(), b"labels": y, b"data": x,
            b"filenames": [f"img_{i}_{j}.png".encode() for j in range(per_batch)],
        })
        train_x.append(x)
        train_y += y
    test_x, test_y = _images(rng, test), rng.integers(0, 10, test).tolist()
    _dump(folder / "test_batch", {b"batch_label": b"testing batch 1 of 1", b"labels": test_y,
                                  b"data": test_x, b"filenames": [b"t.png"] * test})
    _dump(folder / "batches.meta", {b"num_cases_per_batch": per_batch, b"num_vis": 3072,
                                    b"label_names": [f"c{i}".encode() for i in range(10)]})
    return np.concatenate(train_x), np.array(train_y), test_x, np.array(test_y)


def write_cifar100(root: Path, train: int = 12, test: int = 5) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(1)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    parts = []
    for name, n in (("train", train), ("test", test)):
        x, fine = _images(rng, n), rng.integers(0, 100, n).tolist()
        _dump(folder / name, {b"filenames": [b"f.png"] * n, b"batch_label": name.encode(),
                              b"fine_labels": fine, b"coarse_labels": [f // 5 for f in fine],
                              b"data": x})
        parts += [x, np.array(fine)]
    _dump(folder / "meta", {b"fine_label_names": [b"f"] * 100, b"coarse_label_names": [b"c"] * 20})
    return tuple(parts)


def _check(split: Split, images: np.ndarray, labels: np.ndarray) -> None:
    assert split.images.dtype == torch.uint8 and split.images.shape == (len(images), 3, 32, 32)
    assert split.labels.dtype == torch.int64
    assert np.array_equal(split.images.numpy().reshape(len(images), -1), images)
    # rows are channel-major: the first 1024 bytes are the red plane
    assert np.array_equal(split.images[:, 0].numpy().reshape(len(images), -1), images[:, :1024])
    assert np.array_equal(split.labels.numpy(), labels)


def test_cifar10_archive_round_trips(tmp_path):
    train_x, train_y, test_x, test_y = write_cifar10(tmp_path)
    train, test = load_archive(tmp_path, "cifar10")
    _check(train, train_x, train_y)
    _check(test, test_x, test_y)


def test_cifar100_archive_reads_fine_labels(tmp_path):
    train_x, train_y, test_x, test_y = write_cifar100(tmp_path)
    train, test = load_archive(tmp_path, "cifar100")
    _check(train, train_x, train_y)
    _check(test, test_x, test_y)


@pytest.mark.parametrize(("dataset", "folder"), [("cifar10", "cifar-10-batches-py"),
                                                 ("cifar100", "cifar-100-python")])
def test_missing_archive_without_torchvision_names_the_expected_path(
    tmp_path, monkeypatch, dataset, folder
):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision raises ImportError
    with pytest.raises(OptbenchError) as err:
        load_archive(tmp_path / "nowhere", dataset)
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "nowhere" / folder) in message and "torchvision" in message


def test_a_file_that_is_not_a_cifar_batch_is_refused(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(OptbenchError, match="test_batch is not a CIFAR python-pickle batch"):
        load_archive(tmp_path, "cifar10")


def test_synthetic_data_has_the_archive_representation_and_is_seeded():
    train, test = synthetic(10, 200, 50, seed=3)
    assert train.images.dtype == torch.uint8 and train.images.shape == (200, 3, 32, 32)
    assert train.labels.dtype == torch.int64 and len(test) == 50
    assert torch.bincount(train.labels).tolist() == [20] * 10  # balanced
    again, _ = synthetic(10, 200, 50, seed=3)
    other, _ = synthetic(10, 200, 50, seed=4)
    assert torch.equal(train.images, again.images) and torch.equal(train.labels, again.labels)
    assert not torch.equal(train.images, other.images)


def _numbered(labels: list[int]) -> Split:
    """A split whose image i is filled with the value i, to see which examples were kept."""
    n = len(labels)
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 32, 32)
    return Split(images.contiguous(), torch.tensor(labels))


def _ids(split: Split) -> list[int]:
    return split.images[:, 0, 0, 0].tolist()


def test_subset_as_stored_takes_the_first_examples():
    split = _numbered([0, 0, 0, 1, 2, 1, 2, 2])
    assert _ids(take_subset(split, 3, balanced=False, classes=3)) == [0, 1, 2]


def test_balanced_subset_takes_the_first_of_each_class_in_stored_order():
    split = _numbered([0, 0, 0, 1, 2, 1, 2, 2])
    chosen = take_subset(split, 6, balanced=True, classes=3)
    assert _ids(chosen) == [0, 1, 3, 4, 5, 6]
    assert chosen.labels.tolist() == [0, 0, 1, 2, 1, 2]
    with pytest.raises(OptbenchError, match="needs 3 examples of class 1"):
        take_subset(split, 9, balanced=True, classes=3)


def test_classes_are_kept_and_relabelled_in_the_order_given():
    split = _numbered([0, 5, 3, 5, 1, 3])
    kept = keep_classes(split, [5, 3])
    assert _ids(kept) == [1, 2, 3, 5] and kept.labels.tolist() == [0, 1, 0, 1]


def test_hold_out_takes_the_last_examples():
    rest, held = hold_out(_numbered([0, 1, 0, 1, 0]), 2)
    assert _ids(rest) == [0, 1, 2] and _ids(held) == [3, 4]
    with pytest.raises(OptbenchError, match="eval_split=5"):
        hold_out(_numbered([0, 1, 0, 1, 0]), 5)
