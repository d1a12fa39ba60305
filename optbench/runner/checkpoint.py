"""Checkpoints that can be trusted: everything a resumed run needs to continue bit for bit, and
a damaged file detected (and named) before it is unpickled.

A node failure or a full disk can leave a checkpoint truncated, empty or full of garbage, so a run
dir keeps two: ``checkpoint.pt`` (the newest) and ``checkpoint.prev.pt`` (the one before), and
records the size and SHA-256 of the checkpoints it wrote in ``checkpoint.sha256.json``. A save:

1. writes the new checkpoint to ``checkpoint.next.pt`` (temp file, fsync, rename);
2. records its digest, with those of the two before it, in ``checkpoint.sha256.json`` (written
   atomically, then the directory fsynced, so the record is durable before the renames);
3. renames ``checkpoint.pt`` to ``checkpoint.prev.pt``, then ``checkpoint.next.pt`` to
   ``checkpoint.pt``, and fsyncs the directory.

A file is good when its size and digest are among the recorded ones, matched by content, not by
name: wherever a crash (or a power loss that reorders the renames) stops a save, each file in
place is one of the three recorded checkpoints, so a good one is never reported as damaged.
Resuming (:func:`load_latest`) tries ``checkpoint.pt``, then ``checkpoint.prev.pt``, reporting
each damaged one in a line, and starts from scratch when neither is good. A damaged file is left
in place: the next save moves it to ``checkpoint.prev.pt`` (so for one interval there is no good
fallback), the save after that replaces it. A checkpoint without a record
(``checkpoints/step_N.pt``, a run dir from before the records) is loaded unverified, and a
failure to unpickle it is reported the same way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from optbench.errors import OptbenchError, first_line
from optbench.runner.run_dir import RunDir, atomic_write, read_json, write_json

DIGESTS = "checkpoint.sha256.json"  # beside the checkpoints it describes
_KEPT_RECORDS = 3  # the new checkpoint and the two a crash mid-save can leave in place


class DamagedCheckpoint(OptbenchError):
    """A checkpoint that cannot be used; the message names the file and what is wrong."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically, unrecorded (the kept ``checkpoints/step_N.pt``)."""
    atomic_write(path, lambda f: torch.save(state, f))


def save_latest(run_dir: RunDir, state: dict[str, Any]) -> None:
    """Make ``state`` the run's newest checkpoint, keeping the one it replaces as the previous
    one (the steps in the module docstring)."""
    staged = run_dir.path / "checkpoint.next.pt"
    save_checkpoint(staged, state)
    digests = run_dir.path / DIGESTS
    write_json(digests, [_digest(staged), *_records(digests)][:_KEPT_RECORDS])
    _fsync_dir(run_dir.path)
    if run_dir.checkpoint.exists():
        os.replace(run_dir.checkpoint, run_dir.previous_checkpoint)
    os.replace(staged, run_dir.checkpoint)
    _fsync_dir(run_dir.path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path``, checked against the digests recorded beside it when there
    are any; :class:`DamagedCheckpoint` when it is damaged or cannot be read."""
    records = _records(path.with_name(DIGESTS))
    size = path.stat().st_size
    if size == 0:
        raise DamagedCheckpoint(f"{path} is damaged: the file is empty")
    if records and all(size != r["size"] for r in records):
        expected = " or ".join(sorted({str(r["size"]) for r in records}))
        raise DamagedCheckpoint(f"{path} is damaged: {size} bytes where a complete checkpoint has {expected}")
    if records and _digest(path) not in records:
        raise DamagedCheckpoint(f"{path} is damaged: its SHA-256 matches no checkpoint written here")
    try:
        # Our own file, holding RNG states and numpy arrays besides tensors: not weights-only.
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # unpickling garbage can raise nearly anything
        raise DamagedCheckpoint(f"{path} cannot be read: {type(err).__name__}: {first_line(err)}") from err


def load_latest(run_dir: RunDir, warn: Callable[[str], None]) -> dict[str, Any] | None:
    """The newest good checkpoint of ``run_dir``, or None to start from scratch. Each damaged
    one is reported to ``warn`` in one line, which says what the run falls back to."""
    paths = run_dir.checkpoints
    for i, path in enumerate(paths):
        try:
            return load_checkpoint(path)
        except DamagedCheckpoint as err:
            fallback = f"trying {paths[i + 1].name}" if i + 1 < len(paths) else \
                "no good checkpoint left: starting from scratch"
            warn(f"{err}; {fallback}")
    return None


def _digest(path: Path) -> dict[str, Any]:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return {"size": path.stat().st_size, "sha256": sha.hexdigest()}


def _records(path: Path) -> list[dict[str, Any]]:
    """The recorded digests, newest first; none when there is no record or it cannot be read
    (the checkpoints are then loaded unverified)."""
    try:
        records = read_json(path)
        return [{"size": int(r["size"]), "sha256": str(r["sha256"])} for r in records]
    except (OSError, ValueError, TypeError, KeyError):
        return []


def _fsync_dir(path: Path) -> None:
    """Make the renames in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
