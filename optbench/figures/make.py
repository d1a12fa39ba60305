"""``optbench figure``: run (or reuse) a preset's sweep, analyse it (the numbers and the verdict),
draw it, and save PNG, PDF, CSV and verdict.json.

The sweep goes through the run store like any sweep, so a figure made twice, or one sharing
runs with an earlier sweep, trains nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optbench.figures.kinds import kind_of
from optbench.figures.preset import load
from optbench.figures.style import save
from optbench.figures.verdict import Verdict
from optbench.sweeps.collect import RunRecord, find_runs
from optbench.sweeps.driver import run_sweep
from optbench.sweeps.manifest import is_sweep


@dataclass
class Made:
    files: list[Path]
    verdict: Verdict


def make(name: str, scale: str, out_dir: Path | None = None, from_dir: Path | None = None,
         overrides: list[str] | None = None) -> Made:
    preset = load(name)
    kind = kind_of(preset)  # before any training: a preset's wrong kind fails at once
    out_dir = out_dir or Path("figures") / name
    records: list[RunRecord] = []
    sweeps = preset.sweeps(scale)
    if from_dir is not None:  # a sweep dir, or a dir of them (a figure with variants)
        sweep_dirs = [from_dir] if is_sweep(from_dir) else sorted(d for d in from_dir.iterdir() if is_sweep(d))
    else:
        sweep_dirs = [out_dir / f"sweep-{scale}" / str(i) for i in range(len(sweeps))]
        for sweep, sweep_dir in zip(sweeps, sweep_dirs):
            run_sweep([*sweep, *(overrides or []), f"hydra.sweep.dir={sweep_dir}"])
    for sweep_dir in sweep_dirs:
        records += find_runs(sweep_dir)
    analysis = kind.analyze(preset, records, preset.settings(scale))
    figure = kind.draw(analysis)
    figure.suptitle(preset.title, fontsize=12)
    files = save(figure, out_dir, name)
    files.append(out_dir / f"{name}.csv")
    analysis.data.to_csv(files[-1], index=False)
    analysis.verdict.write(out_dir / "verdict.json")
    return Made(files, analysis.verdict)
