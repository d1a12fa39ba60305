"""A synthetic language whose best achievable loss is known exactly: a random Markov chain.

The chain has ``states`` tokens and transition rows P_i ~ Dirichlet(concentration · 1), drawn
from ``data_seed``. Each sequence is ``[BOS, x_0, x_1, ..., x_{T-2}]`` with x_0 drawn from the
stationary distribution π, so every x_t is distributed as π. Its entropy rate is
h = Σ_i π_i H(P_i) (nats). The task predicts T - 1 targets per sequence: x_0 after BOS, whose best
loss is H(π), then T - 2 tokens whose best loss is h each (the chain is order 1, so the previous
token is all a predictor can use). The best mean target loss is therefore exactly

    optimal_loss = (H(π) + (T - 2) h) / (T - 1).

With the default 64 states and concentration 0.1, h ≈ 2.3 nats against H(π) ≈ ln 64 ≈ 4.1: a
model must learn the transitions, not just the token frequencies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from optbench.tasks.llama.data import SyntheticSpec

# Tags that give the chain, the held-out set and the training batches independent random streams.
_CHAIN, _EVAL, _TRAIN = 0, 1, 2


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats along the last axis (0 log 0 = 0)."""
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(-1)


def stationary_distribution(transition: np.ndarray) -> np.ndarray:
    """π with π P = π and Σ π = 1 (one linear solve)."""
    n = len(transition)
    a = transition.T - np.eye(n)
    a[-1] = 1.0  # replace one (redundant) balance equation by the normalisation
    b = np.zeros(n)
    b[-1] = 1.0
    return np.linalg.solve(a, b)


class MarkovChain:
    def __init__(self, states: int, concentration: float, seed: int) -> None:
        rng = np.random.default_rng([_CHAIN, seed, 0])
        self.transition = rng.dirichlet(np.full(states, concentration), size=states)
        self.stationary = stationary_distribution(self.transition)
        self.bos = states

    @property
    def entropy_rate(self) -> float:
        return float(self.stationary @ entropy(self.transition))

    def optimal_loss(self, seq_len: int) -> float:
        """The best mean loss over the seq_len - 1 targets of a sequence (module docstring)."""
        first = float(entropy(self.stationary))
        return (first + (seq_len - 2) * self.entropy_rate) / (seq_len - 1)

    def sample(self, rng: np.random.Generator, n: int, seq_len: int) -> np.ndarray:
        """n sequences [BOS, x_0, ..., x_{seq_len-2}], x_0 ~ π, by inverse-CDF sampling."""
        cdf = np.cumsum(self.transition, axis=1)
        cdf[:, -1] = 1.0  # uniforms are < 1, so the last state catches rounding
        first_cdf = np.cumsum(self.stationary)
        first_cdf[-1] = 1.0
        u = rng.random((n, seq_len - 1))
        out = np.empty((n, seq_len), dtype=np.int64)
        out[:, 0] = self.bos
        out[:, 1] = (first_cdf[None, :] <= u[:, :1]).sum(1)
        for t in range(2, seq_len):
            out[:, t] = (cdf[out[:, t - 1]] <= u[:, t - 1 : t]).sum(1)
        return out


class SyntheticSource:
    """Training sequences: step k draws from the stream (seed, k), so the position is just k."""

    def __init__(self, chain: MarkovChain, seq_len: int, sequences: int, seed: int) -> None:
        self.chain, self.seq_len, self.sequences, self.seed = chain, seq_len, sequences, seed
        self.step = 0

    def next_sequences(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([_TRAIN, self.seed, self.step])
        self.step += 1
        ids = self.chain.sample(rng, self.sequences, self.seq_len)
        return ids, np.full(self.sequences, self.seq_len)

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.step = int(state["step"])


class SyntheticData:
    """The :class:`~optbench.tasks.llama.data.LMData` of a Markov chain."""

    def __init__(self, spec: SyntheticSpec, seq_len: int, sequences_per_step: int) -> None:
        self.spec, self.seq_len, self.sequences_per_step = spec, seq_len, sequences_per_step
        self.chain = MarkovChain(spec.states, spec.concentration, spec.data_seed)
        self.vocab_size = spec.vocab_size
        self.optimal_loss: float | None = self.chain.optimal_loss(seq_len)

    def train_source(self, seed: int) -> SyntheticSource:
        return SyntheticSource(self.chain, self.seq_len, self.sequences_per_step, seed)

    def eval_sequences(self, n_targets: int) -> tuple[np.ndarray, np.ndarray]:
        n = math.ceil(n_targets / (self.seq_len - 1))
        rng = np.random.default_rng([_EVAL, self.spec.data_seed, 0])
        return self.chain.sample(rng, n, self.seq_len), np.full(n, self.seq_len)
