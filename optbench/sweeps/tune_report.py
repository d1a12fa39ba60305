"""What a tune writes beside tune.json: ``trials.csv`` (one row per trial) and the comment header
of each frozen preset (how it was tuned, and every trial it was chosen from)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optbench.sweeps.tune_record import RECORD, TuneRecord

TRIALS = "trials.csv"


def hyperparameters(overrides: list[str]) -> dict[str, Any]:
    """A trial's overrides as typed values: ``optimizer.lr=0.01`` -> {"optimizer.lr": 0.01}."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(overrides)}


def _result(score: float | None, failed: bool, reason: str | None) -> str:
    return f"failed ({reason})" if failed else f"{score:.6g}"


def preset_header(record: TuneRecord, task: str, optimizer: str, out: Path) -> list[str]:
    tuning = record.tasks[task]
    entry = tuning.optimizers[optimizer]
    lines = ["Frozen by `optbench tune` (re-run the tune rather than edit it):",
             f"protocol {record.protocol}, budget {record.budget} trial(s), seeds {record.seeds}, final {record.final_seeds}",
             f"selected on {tuning.metric} ({tuning.mode}): its final value, the mean over the tuning seeds",
             f"record: {out / RECORD}",
             "trials (* the winner):"]
    for i, trial in enumerate(entry.trials):
        shown = " ".join(trial.overrides) or "(the config's defaults)"
        lines.append(f"{'*' if i == entry.winner else ' '} {shown} -> {_result(trial.score, trial.failed, trial.reason)}")
    return lines


def write_trials_csv(out: Path, record: TuneRecord) -> Path:
    """One row per trial: task, optimizer, its number, its hyperparameters (a column each),
    score, failed, reason, and whether it won."""
    import pandas as pd

    rows = []
    for task, tuning in record.tasks.items():
        for optimizer, entry in tuning.optimizers.items():
            for i, trial in enumerate(entry.trials):
                rows.append({"task": task, "optimizer": optimizer, "trial": i, **hyperparameters(trial.overrides),
                             "score": trial.score, "failed": trial.failed, "reason": trial.reason,
                             "winner": i == entry.winner})
    path = out / TRIALS
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
