"""Derived seeds: stable, and independent across purposes and run seeds."""

from __future__ import annotations

from optbench.runner.seeding import derive_seed


def test_derived_seeds_are_stable_and_distinct():
    seeds = {(s, p): derive_seed(s, p) for s in range(3) for p in ("model", "data", "probe")}
    assert len(set(seeds.values())) == len(seeds)
    assert derive_seed(0, "model") == seeds[(0, "model")]
    assert all(0 <= v < 2**63 for v in seeds.values())
