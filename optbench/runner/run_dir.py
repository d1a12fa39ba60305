"""The run directory: its files, atomic writes, and the status of the run it holds.

Layout (docs/architecture.md §3): config.yaml, overrides.yaml, env.json, metrics.jsonl, summary.json,
checkpoint.pt and checkpoint.prev.pt (see :mod:`optbench.runner.checkpoint`), .lock, wandb/;
``summary.json`` holds a :class:`optbench.contract.Summary`.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from optbench.contract import RunStatus, Summary


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through a temp file in the same directory, fsync, then rename over ``path``. The
    temp file is created with mode 0666, so the process's umask gives it the usual mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(data, indent=2) + "\n").encode()))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


class RunDir:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    config = property(lambda self: self.path / "config.yaml")
    overrides = property(lambda self: self.path / "overrides.yaml")
    env = property(lambda self: self.path / "env.json")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    summary = property(lambda self: self.path / "summary.json")
    checkpoint = property(lambda self: self.path / "checkpoint.pt")
    lock = property(lambda self: self.path / ".lock")  # held by the process running the run

    previous_checkpoint = property(lambda self: self.path / "checkpoint.prev.pt")

    @property
    def checkpoints(self) -> list[Path]:
        """The checkpoints to resume from, newest first (runner/checkpoint.py keeps two)."""
        return [p for p in (self.checkpoint, self.previous_checkpoint) if p.exists()]

    def kept_checkpoint(self, step: int) -> Path:
        return self.path / "checkpoints" / f"step_{step}.pt"

    def read_summary(self) -> Summary | None:
        """The summary, or None when there is none or it cannot be read as one."""
        try:
            return Summary.from_json(read_json(self.summary))
        except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError, ValueError):
            return None

    def write_summary(self, summary: Summary) -> None:
        write_json(self.summary, summary.to_json())

    def status(self, summary: Summary | None = None) -> RunStatus | None:
        """The status of the run held here, or None if empty; ``summary``: the one a caller has
        just read (else it is read here).

        A ``running`` summary reads as ``interrupted`` when its process is gone (killed, crashed)
        on this host, or when it belongs to this very SLURM job (SLURM requeued it after a time
        limit or a preemption); one owned by another host cannot be checked and stays ``running``.
        """
        summary = summary if summary is not None else self.read_summary()
        if summary is None:
            return RunStatus.INTERRUPTED if self.checkpoints else None
        if summary.status != RunStatus.RUNNING:
            return summary.status
        if summary.host == socket.gethostname() and not pid_alive(summary.pid):
            return RunStatus.INTERRUPTED
        if summary.slurm_job and summary.slurm_job == slurm_job():
            return RunStatus.INTERRUPTED
        return summary.status


def slurm_job() -> str | None:
    """The SLURM job this process runs in, if any; it keeps its id when SLURM requeues it."""
    return os.environ.get("SLURM_JOB_ID")


def pid_alive(pid: Any) -> bool:
    """Whether process ``pid`` on this host is alive (not gone, not a zombie)."""
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process not yet reaped by its parent (a zombie) still answers kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
