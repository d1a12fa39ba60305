"""``optbench figure``: run (or reuse) a preset's sweep, analyse it (the numbers and the verdict),
draw it, and save PNG, PDF, CSV and verdict.json.

The sweep goes through the run store like any sweep, so a figure made twice, or one sharing
runs with an earlier sweep, trains nothing twice. A preset whose scale has a ``tune`` block
(``optbench tune``'s options) tunes every optimizer with the same budget first and draws each
winner's runs at the final seeds (``swan-vs-adam-tuned``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optbench.figures.kinds import kind_of
from optbench.figures.preset import load
from optbench.figures.style import save
from optbench.figures.verdict import Verdict
from optbench.sweeps.arms import runs_of
from optbench.sweeps.collect import RunRecord, find_runs
from optbench.sweeps.driver import run_sweep
from optbench.sweeps.manifest import is_sweep
from optbench.sweeps.tune_record import TuneRecord, read_tune


@dataclass
class Made:
    files: list[Path]
    verdict: Verdict


def make(name: str, scale: str, out_dir: Path | None = None, from_dir: Path | None = None,
         overrides: list[str] | None = None) -> Made:
    preset = load(name)
    kind = kind_of(preset)  # before any training: a preset's wrong kind fails at once
    out_dir = out_dir or Path("figures") / name
    if from_dir is not None:
        records = _drawn_from(from_dir)
    elif (tuning := preset.tuning(scale)) is not None:
        records = _tuned(tuning, out_dir / f"tune-{scale}", overrides or [])
    else:
        records = []
        for i, sweep in enumerate(preset.sweeps(scale)):
            sweep_dir = out_dir / f"sweep-{scale}" / str(i)
            run_sweep([*sweep, *(overrides or []), f"hydra.sweep.dir={sweep_dir}"])
            records += find_runs(sweep_dir)
    analysis = kind.analyze(preset, records, preset.settings(scale))
    figure = kind.draw(analysis)
    figure.suptitle(preset.title, fontsize=12)
    files = save(figure, out_dir, name)
    files.append(out_dir / f"{name}.csv")
    analysis.data.to_csv(files[-1], index=False)
    analysis.verdict.write(out_dir / "verdict.json")
    return Made(files, analysis.verdict)


def _drawn_from(from_dir: Path) -> list[RunRecord]:
    """The runs of a tune dir's winners, of a sweep dir, or of a dir of sweeps (a figure with
    variants)."""
    record = read_tune(from_dir)
    if record is not None:
        return winners(from_dir, record)
    sweep_dirs = [from_dir] if is_sweep(from_dir) else sorted(d for d in from_dir.iterdir() if is_sweep(d))
    return [record for sweep_dir in sweep_dirs for record in find_runs(sweep_dir)]


def _tuned(tuning: dict, tune_dir: Path, overrides: list[str]) -> list[RunRecord]:
    """Tune as ``optbench tune`` would with the options ``tuning`` (extra ``overrides`` for
    every run), into ``tune_dir``; the winners' runs at the final seeds."""
    from optbench.sweeps.tune import tune
    from optbench.sweeps.tune_plan import TuneOptions

    options = {**tuning, "overrides": [*tuning.get("overrides", []), *overrides]}
    record, directory = tune(TuneOptions(**options, out=tune_dir))
    return winners(directory, record)


def winners(tune_dir: Path, record: TuneRecord) -> list[RunRecord]:
    """Each tuned optimizer's winner, at the final seeds, of every task of a tune."""
    return [run for task in record.tasks.values() for tuning in task.optimizers.values()
            for run in runs_of(tune_dir, tuning.final_run_dirs)]
