"""GPU defects shown on the CPU (issue 19, items 2, 3 and 7): CUDA RNG states per run device and
rank (through fake CUDA generators), MFU under several processes and the GPU peak table (through a
stubbed device name), TF32 off for fp32 runs and the numerics switches recorded in env.json."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import torch
import torch.distributed as dist
from helpers import run_config

from optbench import contract
from optbench.runner import perf
from optbench.runner.build import build
from optbench.runner.config import compose
from optbench.runner.loop import Trainer
from optbench.runner.seeding import restore_rng_states, rng_states
from optbench.runner.spec import resolve


class FakeCuda:
    """``count`` CUDA devices whose generator states are distinct tensors (device ``i`` holds
    ``[i, tag]``), with torch.cuda's RNG functions routed to them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, count: int, tag: int = 0) -> None:
        self.states = [torch.tensor([i, tag], dtype=torch.uint8) for i in range(count)]
        self.count = count
        for name in ("get_rng_state", "set_rng_state", "device_count", "current_device"):
            monkeypatch.setattr(torch.cuda, name, getattr(self, name))
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)

    def _index(self, device: int | str | torch.device = "cuda") -> int:
        index = torch.device("cuda", device).index if isinstance(device, int) else torch.device(device).index
        index = self.current_device() if index is None else index
        if index >= self.count:  # as torch does for a device that does not exist
            raise IndexError(f"device {index} of {self.count}")
        return index

    def get_rng_state(self, device: int | str | torch.device = "cuda") -> torch.Tensor:
        return self.states[self._index(device)].clone()

    def set_rng_state(self, state: torch.Tensor, device: int | str | torch.device = "cuda") -> None:
        self.states[self._index(device)] = state.clone()

    def device_count(self) -> int:
        return self.count

    def current_device(self) -> int:
        return 0


TINY = ["task=heavy_tail", "task.classes=4", "task.top=4", "task.groups=2", "optimizer=sgd", "logger=none"]


def _as_rank(monkeypatch: pytest.MonkeyPatch, rank: int, world: int) -> None:
    monkeypatch.setenv("WORLD_SIZE", str(world))
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("LOCAL_RANK", str(rank))


def test_checkpoint_of_eight_torchrun_ranks_resumes_in_one_process_and_in_each_rank(monkeypatch):
    """Rank r of an 8-process run trains on cuda:r: the checkpoint carries every rank's own GPU
    state (gathered from the ranks), and on resume each rank, or a single process, restores its
    own into the one GPU it uses, never touching (or indexing) the others."""
    world = 8
    own = [torch.tensor([r, 10 + r], dtype=torch.uint8) for r in range(world)]  # rank r's cuda:r
    contributed = []

    def all_gather_object(out: list, obj: object) -> None:  # as the ranks' collective would
        contributed.append(obj)
        out[:] = own

    monkeypatch.setattr(dist, "all_gather_object", all_gather_object)
    _as_rank(monkeypatch, 0, world)
    FakeCuda(monkeypatch, world, tag=10)  # rank 0's process: its cuda:0 holds [0, 10]
    saved = rng_states(torch.device("cuda", 0))  # what rank 0 writes
    assert [s.tolist() for s in contributed] == [[0, 10]]
    assert {r: s.tolist() for r, s in saved["cuda"].items()} == {r: [r, 10 + r] for r in range(world)}

    for r in (0, 5):  # resumed by 8 ranks: each gets its own state back, on its own GPU only
        _as_rank(monkeypatch, r, world)
        fake = FakeCuda(monkeypatch, world, tag=99)
        restore_rng_states(saved, torch.device("cuda", r))
        assert [s.tolist() for s in fake.states] == [[i, 10 + r] if i == r else [i, 99] for i in range(world)]

    _as_rank(monkeypatch, 0, 1)  # resumed by one process on its one GPU
    fake = FakeCuda(monkeypatch, 1, tag=99)
    restore_rng_states(saved, torch.device("cuda"))
    assert [s.tolist() for s in fake.states] == [[0, 10]]


def test_single_process_saves_only_its_device_and_reads_older_lists(monkeypatch):
    """A process on cuda:2 of 4 visible GPUs saves cuda:2's state alone; an older checkpoint
    (every visible GPU's state, by device index) still restores, into the run's device only,
    also on a machine with fewer GPUs than wrote it."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    fake = FakeCuda(monkeypatch, 4, tag=7)
    states = rng_states(torch.device("cuda", 2))
    assert {r: s.tolist() for r, s in states["cuda"].items()} == {0: [2, 7]}
    assert "cuda" not in rng_states(torch.device("cpu"))  # a CPU run on a GPU machine

    older = {**states, "cuda": [torch.tensor([i, 3], dtype=torch.uint8) for i in range(8)]}
    fake = FakeCuda(monkeypatch, 1, tag=99)
    restore_rng_states(older, torch.device("cuda", 0))
    assert [s.tolist() for s in fake.states] == [[0, 3]]


@pytest.mark.parametrize("world", [1, 4])
def test_mfu_divides_the_jobs_work_over_every_process_peak(tmp_path, monkeypatch, world):
    """The throughput line counts the whole job's work (every rank holds the step batch), so MFU
    compares it with the peak of all ``world`` GPUs: achieved FLOP/s per GPU over one GPU's peak."""
    peak = 1e12
    monkeypatch.setattr("optbench.runner.loop.peak_flops", lambda device: peak)
    cfg = compose([*TINY, "device=cpu"])
    spec = resolve(cfg, tmp_path / "run")
    built = build(spec)  # in one process; the trainer then counts as one of ``world`` ranks
    monkeypatch.setenv("WORLD_SIZE", str(world))
    trainer = Trainer(cfg, built, built.task.train_stream(0), spec.device, spec.run_dir)
    s = trainer.state
    s.interval_loss, s.interval_steps, s.interval_work = torch.tensor(1.0), 2, 600
    metrics = trainer._train_metrics({}, seconds=3.0)
    flops = trainer.task.flops_per_work()
    assert metrics[contract.throughput(trainer.task.work_unit)] == 200.0
    assert metrics[contract.MFU] == pytest.approx(200.0 * flops / (world * peak), rel=1e-12)


@pytest.mark.parametrize(("name", "peak"), [
    ("NVIDIA H100 80GB HBM3", 989e12),  # SXM
    ("NVIDIA H100 PCIe", 756e12),
    ("NVIDIA H100 NVL", 835e12),
    ("NVIDIA H200", 989e12),
    ("NVIDIA H200 NVL", 835e12),
    ("NVIDIA GH200 480GB", 989e12),
    ("NVIDIA A100-SXM4-80GB", 312e12),
    ("NVIDIA A100 80GB PCIe", 312e12),
    ("NVIDIA L40S", 362e12),
    ("NVIDIA L40", 181e12),
    ("NVIDIA L4", 121e12),
    ("NVIDIA A10", 125e12),
    ("NVIDIA GeForce RTX 4090", 165e12),
    ("NVIDIA A10G", None),  # not an A10: unknown, so no MFU rather than a wrong one
    ("NVIDIA RTX A1000 6GB Laptop GPU", None),  # not an A100
])
def test_gpu_peak_is_the_most_specific_model_named(monkeypatch, name, peak):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    assert perf.peak_flops(torch.device("cuda", 0)) == peak


@pytest.fixture
def tf32_on() -> Iterator[None]:
    """TF32 allowed for cuDNN (PyTorch's default) and for matmuls, then the flags as they were."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_fp32_run_turns_tf32_off_and_env_json_records_every_numerics_switch(tmp_path, tf32_on, one_thread):
    """PyTorch lets cuDNN use TF32 for fp32 convolutions by default: an fp32 run turns it off,
    and TF32 for matmuls, and env.json says so beside the other switches that change numerics."""
    run_config(compose([*TINY, "device=cpu", "train.steps=1"]), tmp_path / "run")
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    numerics = json.loads((tmp_path / "run" / "env.json").read_text())["numerics"]
    assert numerics == {
        "tf32_matmul": False, "tf32_cudnn": False, "float32_matmul_precision": "highest", "compile": False,
        # as the process has them (another option may set them): PyTorch's defaults here
        "sdpa_backends": [name for name in ("flash", "mem_efficient", "math", "cudnn")
                          if getattr(torch.backends.cuda, f"{name}_sdp_enabled")()],
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }
