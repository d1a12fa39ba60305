"""Search spaces (configs/search/*.yaml) and the tuning protocols that draw trials from them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from scipy.stats import qmc

from optbench.errors import OptbenchError
from optbench.runner.config import compose, config_dir
from optbench.sweeps import search_space
from optbench.sweeps.protocols import (
    Coordinate,
    grid,
    grid_levels,
    identity,
    optuna_params,
    overrides,
    quasirandom,
)
from optbench.sweeps.search_space import Dimension, SearchSpace, dimension, load, override

OPTIMIZERS = sorted(p.stem for p in (config_dir() / "optimizer").glob("*.yaml") if p.stem != "zoo")


def space(*dims: Dimension) -> SearchSpace:
    return SearchSpace("opt", dims, "test")


LR = Dimension("optimizer.lr", scale="log", low=1e-4, high=1e-1)
MOMENTUM = Dimension("optimizer.momentum", scale="linear", low=0.0, high=0.99)
WD = Dimension("optimizer.weight_decay", values=(0.0, 0.01, 0.1))
BETAS = Dimension("optimizer.betas", values=((0.9, 0.95), (0.9, 0.999)))
EPS = Dimension("optimizer.eps", scale="log", low=1e-10, high=1e-6)


def test_every_first_class_optimizer_has_a_space_whose_keys_its_config_has() -> None:
    assert search_space.names() == OPTIMIZERS
    for name in OPTIMIZERS:
        found = load(name)
        assert found.keys[0] == "optimizer.lr", f"{name}: the learning rate comes first"
        cfg = compose([f"optimizer={name}"])
        for key in found.keys:
            assert OmegaConf.select(cfg, key) is not None, f"{name}: {key}"
        text = (config_dir() / "search" / f"{name}.yaml").read_text()
        assert text.count("#") >= len(found.keys), f"{name}: each range says where it comes from"


def test_galore_and_swan_fallbacks_follow_the_tuned_lr() -> None:
    """One lr for every parameter, as in the GaLore benchmark: tuning optimizer.lr tunes both."""
    for name in ("galore", "swan"):
        assert compose([f"optimizer={name}", "optimizer.lr=0.003"]).optimizer.fallback.lr == 0.003


def test_a_space_is_read_in_order_with_its_dimensions() -> None:
    adamw = load("adamw")
    assert adamw.keys == ["optimizer.lr", "optimizer.weight_decay", "optimizer.betas"]
    assert adamw.dimensions[0] == Dimension("optimizer.lr", scale="log", low=1e-4, high=1e-1)
    assert adamw.dimensions[2].values == ([0.9, 0.95], [0.9, 0.999])
    assert math.isinf(adamw.size) and load("galore").dimensions[1].size == 3


@pytest.mark.parametrize(("spec", "says"), [
    ({"scale": "log", "low": 0.0, "high": 1.0}, "bad bounds"),
    ({"scale": "linear", "low": 1.0, "high": 1.0}, "bad bounds"),
    ({"scale": "cubic", "low": 1.0, "high": 2.0}, "bad bounds"),
    ({"scale": "log", "low": 1e-3}, "bad bounds"),
    ({"values": []}, "non-empty list"),
    ({"values": 3}, "non-empty list"),
    ({"values": [1], "low": 0}, "non-empty list, alone"),
    ({"step": 2}, "is not a dimension"),
    ([1e-3, 1e-1], "is not a dimension"),
])
def test_a_bad_dimension_is_one_line_naming_the_key_and_what_is_accepted(spec, says) -> None:
    with pytest.raises(OptbenchError) as raised:
        dimension("optimizer.lr", spec, "configs/search/x.yaml")
    message = str(raised.value)
    assert says in message and "configs/search/x.yaml: optimizer.lr" in message and "\n" not in message


def test_a_missing_or_empty_space_names_the_spaces_that_exist(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(OptbenchError, match=r"no search space for optimizer 'zoo'.*spaces exist for: adafactor, adam,"):
        load("zoo")
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "empty.yaml").write_text("# nothing\n")
    monkeypatch.setenv("OPTBENCH_PRESETS", str(tmp_path))  # the user's spaces: looked up first
    with pytest.raises(OptbenchError, match="an empty search space"):
        load("empty")
    (tmp_path / "search" / "sgd.yaml").write_text("optimizer.lr: {values: [0.5]}\n")
    assert load("sgd").dimensions[0].values == (0.5,)  # the user's space replaces the shipped one


def test_a_suite_narrows_shared_keys_for_every_optimizer_and_named_ones_for_one() -> None:
    adamw = space(LR, WD, BETAS)
    search = {"optimizer.lr": {"high": 1e-2}, "optimizer.betas": None, "optimizer.momentum": {"values": [0.9]},
              "opt": {"optimizer.weight_decay": {"scale": "linear", "low": 0.0, "high": 0.2},
                      "optimizer.eps": {"values": [1e-8, 1e-6]}}}
    narrowed = adamw.narrowed(search, "suite task t")
    assert narrowed.keys == ["optimizer.lr", "optimizer.weight_decay", "optimizer.eps"]  # momentum: not adamw's
    assert narrowed.dimensions[0] == Dimension("optimizer.lr", scale="log", low=1e-4, high=1e-2)
    assert narrowed.dimensions[1] == Dimension("optimizer.weight_decay", scale="linear", low=0.0, high=0.2)
    assert "narrowed by suite task t" in narrowed.source
    with pytest.raises(OptbenchError, match="narrowed by suite task t: optimizer.lr: .* bad bounds"):
        adamw.narrowed({"optimizer.lr": {"low": 1.0}}, "suite task t")


def test_values_as_overrides_compose_back_to_the_same_values() -> None:
    rng = np.random.default_rng(0)
    floats = [float(v) for v in 10 ** rng.uniform(-9, 2, size=4)] + [0.1 + 0.2]
    keys = ["optimizer.lr", "optimizer.eps", "optimizer.weight_decay", "optimizer.fallback.lr", "optimizer.scale"]
    values = {**dict(zip(keys, floats)), "optimizer.betas": [0.9, 0.95], "optimizer.rank": 64,
              "optimizer.proj_type": "left", "optimizer.fallback.betas": (0.5, 1e-5)}
    cfg = compose(["optimizer=galore", *(override(k, v) for k, v in values.items())])
    for key, value in values.items():
        composed = OmegaConf.to_container(cfg, resolve=True)
        for part in key.split("."):
            composed = composed[part]
        assert composed == (list(value) if isinstance(value, tuple) else value), key
        assert type(composed) is (list if isinstance(value, tuple) else type(value)), key


# -- protocols -----------------------------------------------------------------------------------------

DEFAULTS = {"optimizer.lr": 1e-3, "optimizer.momentum": 0.9, "optimizer.weight_decay": 0.01,
            "optimizer.betas": (0.9, 0.999), "optimizer.eps": 1e-8}


def defaults(s: SearchSpace) -> dict:
    return {k: DEFAULTS[k] for k in s.keys}


@pytest.mark.parametrize(("dims", "budget", "levels"), [
    ((LR, MOMENTUM, EPS), 8, [2, 2, 2]),  # a cube
    ((LR, MOMENTUM), 12, [4, 3]),  # the larger factor first
    ((LR, MOMENTUM), 7, [7, 1]),  # a prime: the second dimension stays at its default
    ((LR, WD, BETAS), 6, [2, 3, 1]),
    ((WD, LR), 12, [3, 4]),  # values capped at their count
    ((LR, BETAS), 9, [9, 1]),  # 3 does not fit two values: it goes back to the range
    ((LR,), 1, [1]),
])
def test_grid_levels_factor_the_budget_over_the_dimensions(dims, budget, levels) -> None:
    assert grid_levels(space(*dims), budget) == levels
    trials = grid(space(*dims), defaults(space(*dims)), budget)
    assert len(trials) == budget == len({identity(t) for t in trials})


def test_grid_spaces_levels_evenly_with_both_ends_and_refuses_what_does_not_fit() -> None:
    trials = grid(space(LR, WD), defaults(space(LR, WD)), 6)  # 3 x 2
    lrs = sorted({t["optimizer.lr"] for t in trials})
    assert lrs[0] == 1e-4 and lrs[2] == 1e-1 and lrs[1] == pytest.approx(10**-2.5, rel=1e-12)  # the ends, exactly
    assert sorted({t["optimizer.weight_decay"] for t in trials}) == [0.0, 0.1]  # the ends of the list
    lrs = sorted({t["optimizer.lr"] for t in grid(space(LR), {"optimizer.lr": 1e-3}, 4)})
    assert lrs == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1], rel=1e-12)
    with pytest.raises(OptbenchError, match="holds 6 configs, fewer than --budget 7"):
        grid(space(WD, BETAS), defaults(space(WD, BETAS)), 7)
    with pytest.raises(OptbenchError, match=r"--budget 5 does not factor over the values of test \(3 x 2\)"):
        grid(space(WD, BETAS), defaults(space(WD, BETAS)), 5)
    with pytest.raises(OptbenchError, match="an empty search space"):
        grid(space(), {}, 2)


def test_quasirandom_draws_scipys_scrambled_halton_points() -> None:
    s = space(LR, MOMENTUM, WD)
    for seed in (0, 3):
        trials = quasirandom(s, defaults(s), 8, seed)
        points = qmc.Halton(d=3, scramble=True, seed=seed).random(8)
        assert [t["optimizer.lr"] for t in trials] == pytest.approx(1e-4 * 1e3 ** points[:, 0], rel=1e-12)
        assert [t["optimizer.momentum"] for t in trials] == pytest.approx(0.99 * points[:, 1], rel=1e-12)
        assert [t["optimizer.weight_decay"] for t in trials] == [WD.values[int(3 * u)] for u in points[:, 2]]
    assert quasirandom(s, defaults(s), 1, 0) == [defaults(s)]  # budget 1: the config's defaults


def test_quasirandom_skips_repeated_points_of_a_space_of_values() -> None:
    s = space(WD, BETAS)
    trials = quasirandom(s, defaults(s), 6, 0)
    assert len({identity(t) for t in trials}) == 6  # every point of the 3 x 2 space


def test_coordinate_descends_one_dimension_a_round_around_the_incumbent() -> None:
    s = space(LR, WD)

    def loss(trial: dict) -> float:  # convex in log lr, best at 0.02; weight decay only hurts
        return (math.log10(trial["optimizer.lr"]) - math.log10(0.02)) ** 2 + trial["optimizer.weight_decay"]

    search = Coordinate(s, defaults(s), 13)
    rounds = []
    while trials := search.ask():
        rounds.append(trials)
        for trial in trials:
            search.tell(trial, loss(trial))
    assert [len(r) for r in rounds] == [1, 5, 2, 4, 1]  # 13 trials: the last round cut to the budget
    asked = [t for r in rounds for t in r]
    assert len({identity(t) for t in asked}) == 13
    assert rounds[0] == [defaults(s)]
    # the lr's 5 levels at the default weight decay; the best, 10^-1.75, becomes the incumbent
    assert [t["optimizer.lr"] for t in rounds[1]] == pytest.approx(10 ** np.linspace(-4, -1, 5), rel=1e-12)
    assert {t["optimizer.weight_decay"] for t in rounds[1]} == {0.01}
    # the weight decay's values not tried yet at the incumbent lr; 0 wins
    assert [(t["optimizer.lr"], t["optimizer.weight_decay"]) for t in rounds[2]] == \
        [(pytest.approx(10**-1.75), 0.0), (pytest.approx(10**-1.75), 0.1)]
    assert {t["optimizer.weight_decay"] for t in rounds[3]} == {0.0}  # the lr's levels again, but the incumbent
    # a pass that brings nothing new: the lr's levels gain the geometric midpoints around the incumbent
    assert rounds[4] == [{"optimizer.lr": pytest.approx(10**-2.125), "optimizer.weight_decay": 0.0}]
    assert search.incumbent == {"optimizer.lr": pytest.approx(10**-1.75), "optimizer.weight_decay": 0.0}


def test_optuna_params_are_hydras_sweep_syntax() -> None:
    assert optuna_params(space(LR, MOMENTUM, BETAS)) == [
        "optimizer.lr=tag(log,interval(0.0001,0.1))",
        "optimizer.momentum=interval(0.0,0.99)",
        "optimizer.betas=choice([0.9,0.95],[0.9,0.999])",
    ]
    assert overrides({"optimizer.lr": 1e-05, "optimizer.betas": [0.9, 0.95]}) == [
        "optimizer.lr=1e-05", "optimizer.betas=[0.9,0.95]"]
