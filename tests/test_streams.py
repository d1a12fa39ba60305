"""Batch streams are deterministic and resume exactly where they stopped."""

from __future__ import annotations

import torch

from optbench.tasks.streams import ShuffledStream


def _stream(seed: int) -> ShuffledStream:
    return ShuffledStream(n=10, size=3, seed=seed, take=lambda i: i.clone())


def test_each_epoch_is_a_permutation_minus_the_last_partial_batch():
    stream = _stream(seed=0)
    epoch = torch.cat([next(stream)[0] for _ in range(3)])
    assert len(set(epoch.tolist())) == 9
    second = torch.cat([next(stream)[0] for _ in range(3)])
    assert not torch.equal(epoch, second) and len(set(second.tolist())) == 9


def test_state_dict_resumes_the_same_sequence():
    reference, resumed = _stream(seed=5), _stream(seed=5)
    expected = [next(reference)[0] for _ in range(8)]
    for _ in range(4):
        next(resumed)
    state = resumed.state_dict()
    fresh = _stream(seed=5)
    fresh.load_state_dict(state)
    assert all(torch.equal(a, next(fresh)[0]) for a in expected[4:])


def test_seeds_give_different_orders():
    assert not torch.equal(next(_stream(0))[0], next(_stream(1))[0])
