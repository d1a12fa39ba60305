"""Stopping a run gracefully when it is told to: SIGTERM (what SLURM sends on preemption, a time
limit or ``scancel``), SIGINT (Ctrl-C) and SIGUSR1 (which SLURM can send ahead of the limit,
``--signal=USR1@60``).

The first such signal asks the loop to stop after the step in progress: it writes a checkpoint,
the run is recorded as ``interrupted`` and the process exits with 128 + the signal's number, the
shell's convention. A second signal stops at once (KeyboardInterrupt), as an impatient user
expects, unless it repeats the first within a second: ``scancel`` delivers SIGTERM to a job's
step and to its batch shell, so a SLURM job often sees it twice.

Under submitit (``hydra/launcher=slurm``), SLURM's preemption and time-limit warning is SIGUSR2,
on which submitit requeues the job: it stops the run the same way, and once its checkpoint is
written and the run recorded, submitit's own handler requeues the job, which then resumes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
DUPLICATE_SECONDS = 1.0  # the same signal again within this is a duplicate delivery, not a second ask


class StopRequest:
    """Set by the first signal; read by the loop between steps."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._at = 0.0  # when it was set (time.monotonic)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self.signal is None:
            self.signal, self._at = signum, now
        elif signum != self.signal or now - self._at >= DUPLICATE_SECONDS:
            raise KeyboardInterrupt(f"second signal ({signal.Signals(signum).name}): stopping at once")

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ""


_current: StopRequest | None = None  # the request of the run in progress in this process


def ask_to_stop(signum: int) -> None:
    """Ask the run in progress in this process to stop, as a first signal would, from any thread;
    unlike a signal, asking again never escalates to stopping at once. Without a run in
    progress, the process is sent the signal."""
    if _current is None:
        os.kill(os.getpid(), signum)
    elif _current.signal is None:
        _current.signal = signum


@contextlib.contextmanager
def graceful_stop() -> Iterator[StopRequest]:
    """Within the block, the signals above set the request instead of killing the process; the
    previous handlers come back after it. Signal handlers can only be set from the main thread:
    elsewhere the request is never set and signals keep their usual effect."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    global _current
    requeue = signal.getsignal(signal.SIGUSR2)  # submitit's, in a SLURM job it runs
    requeue = requeue if callable(requeue) else None
    caught = SIGNALS if requeue is None else (*SIGNALS, signal.SIGUSR2)
    previous = {signum: signal.signal(signum, request._handle) for signum in caught}
    _current = request
    try:
        yield request
    finally:
        _current = None
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if requeue is not None and request.signal == signal.SIGUSR2:
        requeue(signal.SIGUSR2, None)  # the run is checkpointed and recorded: requeue, and exit
