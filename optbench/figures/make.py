"""``optbench figure``: run (or reuse) a preset's sweep, draw it, save PNG, PDF and CSV, judge it.

The sweep goes through the run store like any sweep, so a figure made twice, or one sharing
runs with an earlier sweep, trains nothing twice.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from optbench.figures.preset import load
from optbench.figures.style import save
from optbench.figures.verdict import Verdict
from optbench.sweeps.collect import RunRecord, find_runs
from optbench.sweeps.manifest import is_sweep


@dataclass
class Made:
    files: list[Path]
    verdict: Verdict


def run_sweep(overrides: list[str], sweep_dir: Path) -> None:
    from optbench import launch
    from optbench.sweeps import driver

    hydra_args, cfg, _ = launch.prepare([*overrides, f"hydra.sweep.dir={sweep_dir}"], multirun=True)
    driver.drive(sweep_dir, driver.plan(hydra_args, cfg))


def make(name: str, scale: str, out_dir: Path | None = None, from_dir: Path | None = None,
         overrides: list[str] | None = None) -> Made:
    preset = load(name)
    out_dir = out_dir or Path("figures") / name
    records: list[RunRecord] = []
    sweeps = preset.sweeps(scale)
    if from_dir is not None:  # a sweep dir, or a dir of them (a figure with variants)
        sweep_dirs = [from_dir] if is_sweep(from_dir) else sorted(d for d in from_dir.iterdir() if is_sweep(d))
    else:
        sweep_dirs = [out_dir / f"sweep-{scale}" / str(i) for i in range(len(sweeps))]
        for sweep, sweep_dir in zip(sweeps, sweep_dirs):
            run_sweep([*sweep, *(overrides or [])], sweep_dir)
    for sweep_dir in sweep_dirs:
        records += find_runs(sweep_dir)
    kind = importlib.import_module(f"optbench.figures.{preset.kind}")
    drawn = kind.draw(preset, records, preset.settings(scale))
    drawn.figure.suptitle(preset.title, fontsize=12)
    files = save(drawn.figure, out_dir, name)
    files.append(out_dir / f"{name}.csv")
    drawn.data.to_csv(files[-1], index=False)
    drawn.verdict.write(out_dir / "verdict.json")
    return Made(files, drawn.verdict)
