"""The CIFAR batch stream: resumable bit-identically (augmentation included), epochs, full batch."""

from __future__ import annotations

import copy

import torch

from optbench.tasks.cifar.augment import MEAN_STD, Augment, Normalize
from optbench.tasks.cifar.data import synthetic
from optbench.tasks.cifar.stream import CifarStream

SPLIT, _ = synthetic(10, 100, 10, seed=0)
AUGMENT = Augment()
NORMALIZE = Normalize(*MEAN_STD["cifar10"], torch.float32, torch.device("cpu"))


def _stream(batch_size: int | None = 32, augment: Augment | None = AUGMENT, seed: int = 5,
            micro_batch: int = 16) -> CifarStream:
    return CifarStream(SPLIT, NORMALIZE, augment, seed, batch_size, micro_batch)


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x.images, y.images) and torch.equal(x.labels, y.labels) for x, y in zip(a, b)
    )


def test_a_restored_stream_continues_with_identical_batches():
    stream = _stream()
    for _ in range(4):  # into the second epoch (3 batches of 32 per epoch of 100)
        next(stream)
    state = copy.deepcopy(stream.state_dict())
    expected = [next(stream) for _ in range(5)]
    fresh = _stream()
    fresh.load_state_dict(state)
    assert all(_same(next(fresh), batch) for batch in expected)


def test_batches_are_seeded_and_augmented_differently_each_step():
    a, b = _stream(), _stream()
    first = [next(a) for _ in range(3)]
    assert all(_same(x, next(b)) for x in first)
    assert not _same(next(_stream(seed=6)), first[0])
    # micro-batches of 16 make each 32-example step
    assert [len(mb.labels) for mb in first[0]] == [16, 16]


def test_an_epoch_visits_distinct_examples_and_the_next_reshuffles():
    stream = _stream(augment=None, micro_batch=32)
    epochs = [[next(stream)[0] for _ in range(3)] for _ in range(2)]
    labels = [torch.cat([b.labels for b in epoch]) for epoch in epochs]
    assert not torch.equal(labels[0], labels[1])
    images = torch.cat([b.images for b in epochs[0]])
    assert len(torch.unique(images.flatten(1), dim=0)) == 96  # no example twice in an epoch


def test_full_batch_without_augmentation_repeats_the_whole_split():
    stream = _stream(batch_size=None, augment=None, micro_batch=40)
    first, second = next(stream), next(stream)
    assert [len(mb.labels) for mb in first] == [40, 40, 20]
    assert _same(first, second)
    assert torch.equal(torch.cat([mb.labels for mb in first]), SPLIT.labels)
    torch.testing.assert_close(first[0].images, NORMALIZE(SPLIT.images[:40]))


def test_full_batch_with_augmentation_changes_every_step_and_resumes():
    stream = _stream(batch_size=None, micro_batch=100)
    first = next(stream)
    state = stream.state_dict()
    second = next(stream)
    assert not _same(first, second)
    assert torch.equal(first[0].labels, SPLIT.labels)
    fresh = _stream(batch_size=None, micro_batch=100)
    fresh.load_state_dict(state)
    assert _same(next(fresh), second)
