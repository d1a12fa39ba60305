"""One run trained by two processes under torchrun, on CPU (gloo): the losses of one process with
the same global batch, and a run dir written by rank 0 alone."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers import losses, optbench, optbench_in_process, run_config, summary, wait_until

from optbench.contract import share
from optbench.errors import OptbenchError
from optbench.loggers.jsonl import read_metrics
from optbench.runner.config import compose
from optbench.runner.run_dir import RunDir
from optbench.runner.spec import check
from optbench.tasks.llama.data import IGNORE_INDEX, TokenBatch
from optbench.tasks.llama.task import LlamaTask

#: a LLaMA whose steps cost little beside a process's start-up, with every size even (FSDP halves
#: each parameter); 50 steps, so that a run killed at its first checkpoint has 45 left
STEPS = 50
RUN = ["task=llama_tiny", "task.hidden=32", "task.intermediate=64", "task.heads=2", "task.layers=2",
       "task.seq_len=32", "task.eval_tokens=256", "optimizer=adamw", "data=synthetic", "device=cpu",
       f"train.steps={STEPS}", "train.log_every=1", "train.checkpoint_every=5", "logger=none"]


#: `optbench ARGS` in two processes; --standalone picks a free port
TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m")


@pytest.fixture(scope="module", autouse=True)
def _one_thread_per_process() -> Iterator[None]:
    """One thread per process, in the single-process runs (in this process) too: on a shared,
    busy machine two threads can be several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the runs in this process
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield
    torch.set_num_threads(threads)


def torchrun(*args: str) -> subprocess.CompletedProcess:
    return optbench(*args, runner=TORCHRUN)


def max_relative_difference(run_dir: Path, reference: Path, steps: int = STEPS) -> float:
    ours, theirs = losses(run_dir), losses(reference)
    assert [step for step, _ in ours] == [step for step, _ in theirs] == list(range(1, steps + 1))
    return max(abs(a - b) / abs(b) for (_, a), (_, b) in zip(ours, theirs))


def one_process(overrides: list[str], run_dir: Path) -> Path:
    """The run in this process (a single process: no torchrun variables here)."""
    run_config(compose(overrides), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The single-process run: 16 sequences per step, as the two processes share them."""
    return one_process(RUN, tmp_path_factory.mktemp("single") / "D")


@pytest.fixture(scope="module", params=["ddp", "fsdp"])
def parallel(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def two_processes(parallel: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """The run under torchrun, uninterrupted: compared with one process, and with itself killed
    and resumed."""
    run_dir = tmp_path_factory.mktemp(parallel) / "D"
    return run_dir, torchrun("run", *RUN, f"train.parallel={parallel}", f"hydra.run.dir={run_dir}")


def test_two_processes_match_one(two_processes, reference, parallel):
    run_dir, result = two_processes
    assert max_relative_difference(run_dir, reference) < 1e-5  # measured: 2.2e-7 (both)
    # rank 0 alone wrote the run dir (each step logged once) and printed
    assert summary(run_dir)["status"] == "completed"
    assert summary(run_dir)["work"] == summary(reference)["work"]  # tokens of both processes
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(p.name for p in reference.iterdir())
    assert result.stderr.count("run completed") == 1
    # FSDP holds half of every parameter in each process
    param_bytes = [read_metrics(d / "metrics.jsonl")[-1]["mem/param_bytes"] for d in (run_dir, reference)]
    assert param_bytes[0] == (param_bytes[1] // 2 if parallel == "fsdp" else param_bytes[1])


#: logistic regression, whose batches are tuples of tensors
LOGREG = ["task.data=synthetic", "task.n=2000", "task.batch_size=64", "optimizer=adam", "optimizer.lr=0.01",
          "device=cpu", "train.steps=20", "train.log_every=1", "logger=none"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """A sweep over two seeds under torchrun (its dir holds ``S`` and the run store ``store``)."""
    root = tmp_path_factory.mktemp("sweep")
    return root, torchrun("run", "-m", *LOGREG, "seed=0,1", f"hydra.sweep.dir={root / 'S'}",
                          f"store={root / 'store'}")


def test_tuple_batches_are_shared_too(tmp_path, sweep):
    """The default ``Task.shard`` (rows of each tensor), and a loss that reads ``model.weight``
    (logreg's L2 term) through the DDP wrapper: the sweep's seed-0 job against one process."""
    job = json.loads((sweep[0] / "S" / "jobs" / "0.json").read_text())
    assert "seed=0" in job["overrides"]
    one = one_process([*LOGREG, "seed=0"], tmp_path / "one")
    assert max_relative_difference(Path(job["run_dir"]), one, steps=20) < 1e-5  # measured: 1e-7


def test_a_sweep_under_torchrun_is_recorded_and_reported_once(sweep):
    """Each job of a sweep is trained by both processes; rank 0 alone writes the sweep's manifest
    and job pointers and prints its table, and every job lands in the store, completed."""
    root, result = sweep
    assert result.stdout.count("2 run(s)") == 1  # the table's title
    assert sorted(p.name for p in (root / "S" / "jobs").iterdir()) == ["0.json", "1.json"]
    assert [summary(d)["status"] for d in sorted((root / "store").iterdir())] == ["completed", "completed"]


def test_detach_is_refused_under_torchrun(tmp_path, monkeypatch):
    _as_rank_0_of_2(monkeypatch)
    result = optbench_in_process("run", "-m", "--detach", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'S'}")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --detach starts one background driver, not one per "
                                     "torchrun process: under torchrun, run the sweep attached "
                                     "(without --detach)")
    assert not (tmp_path / "S").exists()


def _as_rank_0_of_2(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(key, value)


def test_fsdp_refuses_whole_matrix_optimizers(tmp_path, monkeypatch):
    """Refused while composing, before the processes meet: here in one process that torchrun's
    variables make rank 0 of 2 (under torchrun, every rank prints this line and exits 2)."""
    _as_rank_0_of_2(monkeypatch)
    result = optbench_in_process("run", "task=llama_tiny", "optimizer=galore", "train.parallel=fsdp",
                                 f"hydra.run.dir={tmp_path / 'D'}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [(
        "error: train.parallel=fsdp gives each process a shard of every matrix, but GaLoreAdamW "
        "updates whole matrices; use train.parallel=ddp, or an elementwise optimizer such as adamw"
    )]
    assert not (tmp_path / "D").exists()


@pytest.mark.parametrize(("args", "match"), [
    (["optimizer=muon", "train.parallel=fsdp"], "use train.parallel=ddp"),
    (["optimizer=adafactor", "train.parallel=fsdp"], "use train.parallel=ddp"),
    (["diagnostics=sharpness", "train.parallel=fsdp"], "probes"),
    (["optimizer=zoo", "optimizer.name=adahessian"], "single process"),
])
def test_what_processes_cannot_run_is_refused_under_torchrun_only(monkeypatch, args, match):
    check(compose(args))  # one process: train.parallel has no effect
    _as_rank_0_of_2(monkeypatch)
    with pytest.raises(OptbenchError, match=match):
        check(compose(args))


def test_shares_split_the_rows_and_the_targets():
    assert [share(6, rank, 3) for rank in range(3)] == [slice(0, 2), slice(2, 4), slice(4, 6)]
    with pytest.raises(OptbenchError, match="multiple of 4"):
        share(6, 0, 4)
    task = LlamaTask(hidden=16, intermediate=32, heads=2, layers=1, vocab_size=100, seq_len=8,
                     sequences_per_step=4)
    ids = torch.arange(32).reshape(4, 8) % 20
    labels = ids.masked_fill(torch.arange(8) >= torch.tensor([[8], [3], [1], [5]]), IGNORE_INDEX)
    batch = TokenBatch(ids, labels, 7 + 2 + 0 + 4)
    shards = [task.shard(batch, rank, 2) for rank in range(2)]
    assert [s.n_targets for s in shards] == [9, 4]
    assert torch.equal(torch.cat([s.input_ids for s in shards]), ids)


@pytest.mark.slow
def test_killed_then_resumed_is_bit_identical(tmp_path, two_processes, parallel):
    """Against the uninterrupted run, at every step; checkpoints hold whole (gathered) tensors,
    in the single-process format."""
    killed = tmp_path / "killed"
    args = ["run", *RUN, f"train.parallel={parallel}", f"hydra.run.dir={killed}"]
    process = subprocess.Popen([*TORCHRUN, "optbench", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until((killed / "checkpoint.pt").exists, "no checkpoint appeared", process=process)
    process.send_signal(signal.SIGTERM)  # torchrun passes it on: the workers stop after their step
    process.wait(timeout=60)
    assert RunDir(killed).status() == "interrupted"
    assert losses(killed)[-1][0] < STEPS  # measured: stopped at step 6

    resumed = torchrun(*args)

    assert "resuming" in resumed.stderr
    assert summary(killed)["status"] == "completed"
    assert losses(killed) == losses(two_processes[0])
    single = torch.load(killed / "checkpoint.pt", weights_only=False)["model"]
    assert all(type(t) is torch.Tensor for t in single.values())  # not sharded (DTensor)
