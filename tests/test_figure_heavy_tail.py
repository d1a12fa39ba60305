"""`optbench figure heavy-tail` at smoke scale, through the CLI: per-optimizer lr sweeps, the
figure files, and a verdict that held with its numbers."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import made_figure


@pytest.mark.slow  # 9 runs of 100 full-batch steps: 15-60 s on 2 CPU cores (idle to busy)
def test_heavy_tail_figure_at_smoke_scale(tmp_path):
    out, _, verdict = made_figure("heavy-tail", tmp_path)
    numbers = verdict["numbers"]
    assert numbers["groups"] == 7 and numbers["rarest_group"] == "classes 64–127"
    gd, adam, sign = numbers["sgd"], numbers["adam"], numbers["signsgd"]
    for tuned in (gd, adam, sign):  # each optimizer's own grid brackets its pick
        assert len(tuned["lr_grid"]) == 3 and not tuned["lr_at_grid_edge"]
    assert gd["frequent_ratio"] < 0.8  # GD does learn the frequent classes ...
    assert gd["rare_ratio"] > 0.9  # ... but not the rare ones
    assert adam["rare_ratio"] < 0.1 and sign["rare_ratio"] < 0.1
    assert set(numbers["gd_share"]) == {"adam", "signsgd"}
    assert all(share <= numbers["gd_share_at_most"] for share in numbers["gd_share"].values())

    data = pd.read_csv(out / "heavy-tail.csv")
    assert set(data["optimizer"]) == {"sgd", "adam", "signsgd"}
    assert set(data["group"].astype(str)) == {"all", *map(str, range(7))}
    steps = data[(data["optimizer"] == "sgd") & (data["group"].astype(str) == "all")]["step"]
    assert steps.min() == 0 and steps.max() == 100
