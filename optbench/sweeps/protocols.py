"""Tuning protocols: which trials an optimizer gets, exactly ``budget`` distinct ones each.

A trial is a point of the search space: a value for every key (:data:`Trial`), written as
overrides and run at every tuning seed. Budget 1 is the config's defaults (a tuning-free
optimizer). The protocols:

- ``grid``: levels per dimension from a balanced factorisation of the budget (:func:`grid_levels`);
- ``quasirandom``: scrambled Halton points (``scipy.stats.qmc``), as AlgoPerf's external tuning
  draws its trials (``algoperf/halton.py``; docs/references.md §6.1);
- ``coordinate``: one hyperparameter at a time around the incumbent, as the first phase of
  "Fantastic Pretraining Optimizers" (Wen et al. 2025; §6.2), in rounds (:class:`Coordinate`);
- ``optuna``: TPE through Hydra's Optuna sweeper, over the parameters :func:`optuna_params` writes.

Grid, quasirandom and coordinate are proposers: :meth:`ask` gives the next round of trials (none
when the budget is spent), :meth:`tell` takes each trial's score, lower being better.
"""

from __future__ import annotations

import itertools
import math
import typing
from collections.abc import Iterable
from enum import Enum
from typing import Any

from optbench.errors import OptbenchError
from optbench.sweeps.search_space import SearchSpace, override, value_text

Trial = dict[str, Any]  # a value for every key of the search space, in its order


class Protocol(str, Enum):
    grid = "grid"
    quasirandom = "quasirandom"
    coordinate = "coordinate"
    optuna = "optuna"


def overrides(trial: Trial) -> list[str]:
    return [override(key, value) for key, value in trial.items()]


def identity(trial: Trial) -> tuple[str, ...]:
    """What tells trials apart: their values as override text (lists are not hashable)."""
    return tuple(overrides(trial))


def check_budget(space: SearchSpace, budget: int) -> None:
    """A space must hold at least ``budget`` distinct points."""
    if budget > 1 and not space.dimensions:
        raise OptbenchError(f"{space.source}: an empty search space for --budget {budget}; keep at "
                            "least one key, or tune with --budget 1 (the defaults)")
    if space.size < budget:
        raise OptbenchError(f"{space.source}: the search space of {space.optimizer} holds "
                            f"{space.size} configs, fewer than --budget {budget}; widen it or lower the budget")


def _divisors(n: int) -> list[int]:
    return [f for f in range(1, n + 1) if n % f == 0]


def grid_levels(space: SearchSpace, budget: int) -> list[int]:
    """How many levels each dimension gets, in order, their product the budget: the budget is
    factored over the dimensions left, the larger factor first (the smallest divisor that is at
    least the k-th root of what is left over k dimensions); a list of values takes at most its
    count and passes what is left on; what no dimension could take goes to the first range."""
    levels, left = [], budget
    for i, dim in enumerate(space.dimensions):
        k = len(space.dimensions) - i
        balanced = next(f for f in _divisors(left) if f**k >= left)
        levels.append(max(f for f in _divisors(left) if f <= min(balanced, dim.size)))
        left //= levels[-1]
    if left > 1:
        first = next((i for i, d in enumerate(space.dimensions) if d.continuous), None)
        if first is None:
            counts = " x ".join(str(int(d.size)) for d in space.dimensions)
            raise OptbenchError(f"grid: --budget {budget} does not factor over the values of "
                                f"{space.source} ({counts}); choose a budget that does")
        levels[first] *= left
    return levels


def grid(space: SearchSpace, defaults: Trial, budget: int) -> list[Trial]:
    """The product of each dimension's levels (:func:`grid_levels`); a dimension with one level
    stays at the config default. The first dimension varies slowest."""
    check_budget(space, budget)
    axes = [[defaults[d.key]] if n == 1 else d.levels(n) for d, n in zip(space.dimensions, grid_levels(space, budget))]
    return [dict(zip(space.keys, point)) for point in itertools.product(*axes)]


def halton(dimensions: int, n: int, seed: int) -> Any:
    """The first ``n`` points of the scrambled Halton sequence of ``seed`` in [0, 1)^dimensions."""
    from scipy.stats import qmc

    return qmc.Halton(d=dimensions, scramble=True, seed=seed).random(n)


def quasirandom(space: SearchSpace, defaults: Trial, budget: int, seed: int) -> list[Trial]:
    """Scrambled Halton points mapped to the dimensions (:meth:`Dimension.at`), the first
    ``budget`` distinct ones (a point repeats only where every dimension is a list of values)."""
    check_budget(space, budget)
    if budget == 1:
        return [dict(defaults)]
    trials: dict[tuple[str, ...], Trial] = {}
    drawn = budget
    while len(trials) < budget:
        trials = {}
        for point in halton(len(space.dimensions), drawn, seed):
            trial = {d.key: d.at(float(u)) for d, u in zip(space.dimensions, point)}
            trials.setdefault(identity(trial), trial)
            if len(trials) == budget:
                break
        drawn *= 2
    return list(trials.values())


class Proposer(typing.Protocol):
    def ask(self) -> list[Trial]: ...

    def tell(self, trial: Trial, score: float) -> None: ...


class OneRound:
    """A protocol whose trials are all known up front (grid, quasirandom, the defaults)."""

    def __init__(self, trials: list[Trial]) -> None:
        self.trials = trials

    def ask(self) -> list[Trial]:
        trials, self.trials = self.trials, []
        return trials

    def tell(self, trial: Trial, score: float) -> None:
        pass


class Coordinate:
    """Coordinate descent over a grid per hyperparameter (Wen et al. 2025, phase 1).

    Round 1 is the config's defaults. Each later round takes the next dimension, in order, and
    tries its levels (:data:`LEVELS` over a range, every value of a list) with the others at the
    incumbent: the best trial so far. Dimensions are cycled; when a whole pass brings no new
    trial, each range gains the midpoints (geometric for log) between the incumbent's value and
    its neighbouring levels. The last round is cut so that exactly ``budget`` trials are run.
    """

    LEVELS = 5

    def __init__(self, space: SearchSpace, defaults: Trial, budget: int) -> None:
        check_budget(space, budget)
        self.space, self.left = space, budget
        self.levels = {d.key: d.levels(self.LEVELS) if d.continuous else list(d.values) for d in space.dimensions}
        self.incumbent, self.best = dict(defaults), math.inf
        self.asked: set[tuple[str, ...]] = set()
        self.next = 0  # the dimension of the next round
        self.round = 0

    def ask(self) -> list[Trial]:
        self.round += 1
        if self.round == 1:
            return self._take([dict(self.incumbent)])
        dims = self.space.dimensions
        while self.left > 0:
            for _ in dims:
                dim = dims[self.next]
                self.next = (self.next + 1) % len(dims)
                trials = self._take({**self.incumbent, dim.key: v} for v in self.levels[dim.key])
                if trials:
                    return trials
            if not self._refine():  # only lists of values, each tried around the incumbent
                return self._take(dict(zip(self.levels, p)) for p in itertools.product(*self.levels.values()))
        return []

    def tell(self, trial: Trial, score: float) -> None:
        if score < self.best:
            self.best, self.incumbent = score, dict(trial)

    def _take(self, trials: Iterable[Trial]) -> list[Trial]:
        """The trials not asked yet, as many as the budget has left."""
        taken = []
        for trial in trials:
            if self.left == len(taken):
                break
            if identity(trial) not in self.asked:
                self.asked.add(identity(trial))
                taken.append(trial)
        self.left -= len(taken)
        return taken

    def _refine(self) -> bool:
        """Add the midpoints around the incumbent to each range; whether any level was added."""
        added = False
        for dim in self.space.dimensions:
            if not dim.continuous:
                continue
            value, levels = self.incumbent[dim.key], self.levels[dim.key]
            below = [v for v in levels if v < value]
            above = [v for v in levels if v > value]
            new = [dim.between(value, v) for v in (below[-1:] + above[:1])]
            new = [v for v in new if v not in levels and v != value]
            self.levels[dim.key] = sorted(levels + new)
            added = added or bool(new)
        return added


def optuna_params(space: SearchSpace) -> list[str]:
    """The space as Hydra's Optuna sweeper reads it: a log range as ``tag(log, interval(a, b))``,
    a linear one as ``interval(a, b)``, values as ``choice(...)``."""
    params = []
    for dim in space.dimensions:
        if dim.values is not None:
            params.append(f"{dim.key}=choice({','.join(value_text(v) for v in dim.values)})")
        else:
            interval = f"interval({value_text(dim.low)},{value_text(dim.high)})"
            params.append(f"{dim.key}={f'tag(log,{interval})' if dim.scale == 'log' else interval}")
    return params


def proposer(protocol: Protocol, space: SearchSpace, defaults: Trial, budget: int, seed: int) -> Proposer:
    """The trials of a protocol that runs through optbench's own sweeps (all but optuna); with
    budget 1, any protocol's: the defaults."""
    if budget == 1:
        return OneRound([dict(defaults)])
    if protocol == Protocol.grid:
        return OneRound(grid(space, defaults, budget))
    if protocol == Protocol.quasirandom:
        return OneRound(quasirandom(space, defaults, budget, seed))
    if protocol == Protocol.coordinate:
        return Coordinate(space, defaults, budget)
    raise ValueError(f"{protocol} runs through Hydra's Optuna sweeper, not a proposer")
