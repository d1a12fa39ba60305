"""The run directory: its files, atomic writes, and the status of the run it holds.

Layout (DESIGN.md §3): config.yaml, overrides.yaml, env.json, metrics.jsonl, summary.json,
checkpoint.pt, wandb/. ``summary.json`` is written when the run starts (status ``running``,
with the owner's host and pid) and replaced atomically when it ends.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

FINISHED = ("completed", "diverged")  # a run in one of these states is done: never recomputed
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = (stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH) & ~_UMASK


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through a temp file in the same directory, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600 files; give the usual umask-based mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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

    def kept_checkpoint(self, step: int) -> Path:
        return self.path / "checkpoints" / f"step_{step}.pt"

    def read_summary(self) -> dict[str, Any] | None:
        try:
            return read_json(self.summary)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def status(self, summary: dict[str, Any] | None = None) -> str | None:
        """``completed``, ``diverged``, ``failed``, ``running``, ``interrupted``, or None if empty;
        ``summary``: the one a caller has just read (else it is read here).

        A ``running`` summary reads as ``interrupted`` when its process is gone (killed, crashed)
        on this host, or when it belongs to this very SLURM job (SLURM requeued it after a time
        limit or a preemption); one owned by another host cannot be checked and stays ``running``.
        """
        summary = summary if summary is not None else self.read_summary()
        if summary is None:
            return "interrupted" if self.checkpoint.exists() else None
        status = summary.get("status")
        if status != "running":
            return status
        if summary.get("host") == socket.gethostname() and not pid_alive(summary.get("pid")):
            return "interrupted"
        if summary.get("slurm_job") and summary["slurm_job"] == slurm_job():
            return "interrupted"
        return status


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
