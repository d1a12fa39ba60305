"""Weights & Biases. Offline (files under the run dir) unless the environment says otherwise.

W&B problems never stop a run: any error warns once and turns the sink off. ``finish()`` is
called on every exit path, with a non-zero exit code when the run failed.
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import Any

from optbench.contract import RunStatus, Summary
from optbench.loggers.console import console


class WandbSink:
    def __init__(
        self,
        *,
        run_dir: Path,
        name: str,
        run_config: dict[str, Any],
        project: str = "optbench",
        entity: str | None = None,
        mode: str = "offline",
        group: str | None = None,
        tags: list[str] | None = None,
        job_type: str | None = None,
    ) -> None:
        self._run = None
        # The id is a function of the run dir, so a resumed run continues the same W&B run.
        run_id = hashlib.sha1(f"{socket.gethostname()}:{run_dir.resolve()}".encode()).hexdigest()[:16]
        try:
            import wandb

            self._run = wandb.init(
                project=project, entity=entity, mode=mode, group=group, tags=tags,
                job_type=job_type, name=name, config=run_config, dir=str(run_dir), id=run_id,
                resume="allow", reinit="finish_previous",
                settings=wandb.Settings(silent=True, console="off"),
            )
        except Exception as err:  # noqa: BLE001 - a logging service must never stop a run
            self._warn(err)

    def _warn(self, err: Exception) -> None:
        console.print(f"[yellow]W&B disabled for this run: {type(err).__name__}: {err}")
        self._run = None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self._run is None:
            return
        try:
            self._run.log(metrics, step=step)
        except Exception as err:  # noqa: BLE001
            self._warn(err)

    def close(self, summary: Summary) -> None:
        if self._run is None:
            return
        try:
            self._run.summary.update({"status": summary.status.value, **summary.final})
            self._run.finish(exit_code=0 if summary.status != RunStatus.FAILED else 1)
        except Exception as err:  # noqa: BLE001
            self._warn(err)
