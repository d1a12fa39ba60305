"""The synthetic Markov language: exact entropy rate and optimum, sampler, stream resume."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from optbench.tasks.llama.synthetic import MarkovChain, entropy
from optbench.tasks.llama.task import LlamaTask


def joint_entropy_per_target(chain: MarkovChain, seq_len: int) -> float:
    """H(x_0, ..., x_{T-2}) / (T - 1) by enumerating every sequence: by the chain rule this is
    the best mean target loss, computed without the entropy-rate formula."""
    p, pi = chain.transition, chain.stationary
    n = seq_len - 1
    total = 0.0
    for seq in itertools.product(range(len(pi)), repeat=n):
        prob = pi[seq[0]] * math.prod(p[a, b] for a, b in itertools.pairwise(seq))
        total -= prob * math.log(prob) if prob > 0 else 0.0
    return total / n


@pytest.mark.parametrize("seq_len", [2, 3, 6])
def test_optimal_loss_equals_enumerated_joint_entropy(seq_len: int) -> None:
    chain = MarkovChain(states=3, concentration=0.7, seed=1)
    expected = joint_entropy_per_target(chain, seq_len)
    assert chain.optimal_loss(seq_len) == pytest.approx(expected, rel=1e-10)


def test_stationary_distribution_by_power_iteration() -> None:
    chain = MarkovChain(states=16, concentration=0.3, seed=2)
    pi = np.full(16, 1 / 16)
    for _ in range(5000):
        pi = pi @ chain.transition
    np.testing.assert_allclose(chain.stationary, pi, atol=1e-10)


def test_empirical_frequencies_match_the_chain() -> None:
    chain = MarkovChain(states=8, concentration=0.5, seed=3)
    seqs = chain.sample(np.random.default_rng(0), n=2000, seq_len=64)
    assert (seqs[:, 0] == chain.bos).all()
    first = np.bincount(seqs[:, 1], minlength=8) / 2000
    np.testing.assert_allclose(first, chain.stationary, atol=0.04)
    pairs = np.zeros((8, 8))
    np.add.at(pairs, (seqs[:, 1:-1].ravel(), seqs[:, 2:].ravel()), 1)
    freq = pairs / pairs.sum(1, keepdims=True)
    np.testing.assert_allclose(freq, chain.transition, atol=0.02)


class Oracle(nn.Module):
    """Predicts with the true chain: log π after BOS, log P[prev] after a state."""

    def __init__(self, chain: MarkovChain, vocab: int) -> None:
        super().__init__()
        table = np.full((vocab, vocab), -1e9)
        with np.errstate(divide="ignore"):
            table[: chain.bos, : chain.bos] = np.log(chain.transition)
            table[chain.bos, : chain.bos] = np.log(chain.stationary)
        self.table = torch.tensor(np.maximum(table, -1e9), dtype=torch.float32)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids]


def test_oracle_reaches_the_optimal_loss_in_evaluate() -> None:
    """A Monte-Carlo check of the formula with the task's own loss and eval code."""
    task = LlamaTask(
        hidden=64,
        intermediate=64,
        heads=1,
        layers=1,
        vocab_size=70,
        seq_len=32,
        sequences_per_step=8,
        eval_tokens=300_000,
        data={"source": "synthetic", "states": 64},
    )
    task.prepare(torch.device("cpu"), torch.float32)
    metrics = task.evaluate(Oracle(task.data.chain, 70))
    # per-token losses have std < 2 nats: 4 standard errors over 3e5 targets is < 0.015
    assert metrics["eval/loss"] == pytest.approx(metrics["eval/optimal_loss"], abs=0.015)
    assert metrics["eval/optimal_loss"] == task.optimal_loss


def test_default_chain_is_learnable_but_not_trivial() -> None:
    chain = MarkovChain(states=64, concentration=0.1, seed=0)
    assert 1.5 < chain.entropy_rate < 0.7 * float(entropy(chain.stationary))


def test_stream_is_deterministic_and_resumes_exactly() -> None:
    task = LlamaTask(
        hidden=64,
        intermediate=64,
        heads=1,
        layers=1,
        vocab_size=65,
        seq_len=16,
        sequences_per_step=8,
        micro_batch=4,
        eval_tokens=100,
    )
    task.prepare(torch.device("cpu"), torch.float32)
    stream = task.train_stream(seed=5)
    for _ in range(3):
        next(stream)
    state = stream.state_dict()
    expected = [next(stream) for _ in range(2)]
    resumed = task.train_stream(seed=5)
    resumed.load_state_dict(state)
    for step, again in zip(expected, (next(resumed) for _ in range(2)), strict=True):
        assert len(step) == 2
        for a, b in zip(step, again, strict=True):
            assert torch.equal(a.input_ids, b.input_ids) and a.n_targets == b.n_targets == 4 * 15
    other = next(task.train_stream(seed=6))
    assert not torch.equal(other[0].input_ids, next(task.train_stream(seed=5))[0].input_ids)
