"""Running a sweep through Hydra's multirun: attached (in this process) or detached.

A detached sweep runs in a background process in its own session, so it survives the terminal
and the SSH connection; its output goes to ``<sweep dir>/driver.log``. With a SLURM launcher
that process only waits on the queue: the jobs themselves are SLURM jobs, and if the driver
dies they still finish (re-running the sweep command picks up whatever is left).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from optbench.runner import distributed
from optbench.sweeps.launch import launch, prepare
from optbench.sweeps.manifest import Manifest, read_manifest, write_manifest

LOG = "driver.log"


@dataclass
class Sweep:
    directory: Path
    manifest: Manifest | None  # None in the processes of a torchrun launch but rank 0
    detached_pid: int | None = None  # the background driver's, with ``detach``


def run_sweep(overrides: list[str], detach: bool = False) -> Sweep:
    """Check every value of the sweep ``overrides`` describe, then run it here (or, with
    ``detach``, in the background): what ``optbench run -m`` and ``optbench figure`` do."""
    hydra_args, cfg, sweep_dir = prepare(overrides, multirun=True)
    if not distributed.is_main():  # under torchrun rank 0 alone records the sweep; all train its jobs
        launch(["--multirun", *hydra_args])
        return Sweep(sweep_dir, None)
    manifest = plan(hydra_args, cfg)
    if detach:
        return Sweep(sweep_dir, manifest, start_detached(sweep_dir, manifest))
    drive(sweep_dir, manifest)
    return Sweep(sweep_dir, manifest)


def plan(hydra_args: list[str], cfg: Any) -> Manifest:
    """The manifest of the sweep ``hydra_args`` describe; ``cfg`` is one composed job config
    (with its ``hydra`` node), which names the launcher and sweeper."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from optbench.sweeps.trial_list import job_overrides, read_trials

    choices = cfg.hydra.runtime.choices
    sweeper, launcher = choices.get("hydra/sweeper"), choices.get("hydra/launcher")
    planned, trials = None, None
    if sweeper in ("basic", "trials"):
        parsed = [o for o in OverridesParser.create().parse_overrides(hydra_args) if not o.is_hydra_override()]
    if sweeper == "basic":  # the jobs, numbered as Hydra's basic sweeper numbers them
        planned = BasicSweeper.split_arguments(parsed, None)[0]
    elif sweeper == "trials":  # the file's jobs, after the command line's overrides
        planned = job_overrides([o.input_line for o in parsed], read_trials(cfg.hydra.sweeper.trials_file))
    else:
        trials = cfg.hydra.sweeper.get("n_trials")
    return Manifest(hydra_args=hydra_args, launcher=launcher, sweeper=sweeper, planned=planned, trials=trials)


def drive(sweep_dir: Path, manifest: Manifest) -> None:
    """Run the sweep here, recording this process as its driver."""
    manifest = manifest.with_driver()
    write_manifest(sweep_dir, manifest)
    try:
        launch(["--multirun", *manifest.hydra_args])
    finally:
        write_manifest(sweep_dir, replace(manifest, ended=time.time()))


def start_detached(sweep_dir: Path, manifest: Manifest) -> int:
    """Start the sweep in a background process of its own session; return its pid."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(sweep_dir, manifest)
    with open(sweep_dir / LOG, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "optbench.sweeps.driver", str(sweep_dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    return process.pid


if __name__ == "__main__":  # the detached driver: python -m optbench.sweeps.driver SWEEP_DIR
    directory = Path(sys.argv[1])
    found = read_manifest(directory)
    if found is None:
        sys.exit(f"no {directory}/manifest.json")
    drive(directory, found)
