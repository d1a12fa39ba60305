"""The run dir's lock: of two processes that race into one run dir, exactly one gets it."""

from __future__ import annotations

import multiprocessing
import time

from optbench.errors import OptbenchError
from optbench.runner.execute import _locked
from optbench.runner.run_dir import RunDir


def _race(path: str, barrier, results) -> None:
    barrier.wait()  # both start together
    try:
        with _locked(RunDir(path)):
            results.put("ran")
            time.sleep(0.05)  # hold it while the other tries
    except OptbenchError as err:
        results.put(str(err))


def test_exactly_one_of_two_racing_processes_holds_the_run_dir(tmp_path):
    context = multiprocessing.get_context("fork")  # the children only lock files: no torch
    for repetition in range(50):
        path = str(tmp_path / str(repetition))
        barrier, results = context.Barrier(2), context.Queue()
        processes = [context.Process(target=_race, args=(path, barrier, results)) for _ in range(2)]
        for p in processes:
            p.start()
        for p in processes:
            p.join(timeout=30)
        outcomes = sorted(results.get(timeout=5) for _ in processes)
        assert outcomes[1] == "ran", outcomes
        assert outcomes[0].startswith(f"{path} is in use by a running process"), outcomes


def _hold(path: str, held) -> None:
    with _locked(RunDir(path)):
        held.set()
        time.sleep(60)


def test_the_lock_goes_with_the_process(tmp_path):
    context = multiprocessing.get_context("fork")
    held = context.Event()
    holder = context.Process(target=_hold, args=(str(tmp_path), held))
    holder.start()
    assert held.wait(timeout=30)
    holder.kill()  # SIGKILL: no cleanup runs
    holder.join()
    with _locked(RunDir(tmp_path)):  # the kernel released it
        pass
