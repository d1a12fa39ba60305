"""The trials file of ``hydra/sweeper=trials``: a JSON list of jobs, each a list of overrides.

The sweeper launches the command line's overrides followed by each job's own (which win where
both set a key); :func:`job_overrides` is how both it and the sweep's manifest
(:func:`optbench.sweeps.driver.plan`) spell a job, so ``optbench sweep status`` lists the jobs
before they start.
"""

from __future__ import annotations

from pathlib import Path

from optbench.errors import OptbenchError
from optbench.runner.run_dir import read_json, write_json


def write_trials(path: Path, jobs: list[list[str]]) -> None:
    write_json(path, jobs)  # atomic: a tune killed while writing it leaves the previous file


def read_trials(path: str | Path) -> list[list[str]]:
    try:
        jobs = read_json(Path(path))
    except (OSError, ValueError) as err:
        raise OptbenchError(f"hydra.sweeper.trials_file={path}: cannot read it ({err}); "
                            "give a JSON file holding a list of override lists") from None
    if not isinstance(jobs, list) or not all(isinstance(j, list) and all(isinstance(o, str) for o in j) for j in jobs):
        raise OptbenchError(f"hydra.sweeper.trials_file={path} is not a list of override lists "
                            '(e.g. [["optimizer.lr=0.1"], ["optimizer.lr=0.01"]])')
    return jobs


def job_overrides(shared: list[str], jobs: list[list[str]]) -> list[list[str]]:
    """Each job's overrides: the shared ones, then its own."""
    return [[*shared, *job] for job in jobs]
