"""A first check of optbench on one CUDA device, in at most six minutes: one JSON and one Markdown report.

Cases, each an ``optbench run`` into its own run dir (the full check; ``--dry`` in brackets):

- ``task=llama60m data=synthetic precision=bf16`` (the recipe's model, sequence length and dtype;
  128 sequences a step, a quarter of the recipe's, so that 200 steps of each case fit the time)
  with AdamW, SWAN, GaLore and Muon, eager and ``train.compile=true``
  [llama_tiny shrunk to 115k parameters, 4 steps, fp32, SWAN eager only: inductor's C++ compile of even
  a tiny model takes half a minute of CPU];
- the sharpness probe (``diagnostics=sharpness``) on the AdamW run [max_iters=4];
- ``task=cifar10 task.data=synthetic`` with ``model=airbench`` and ``model=resnet18``, bf16
  [airbench at width 16 on 256 examples, fp32].

Read from each run dir (metrics.jsonl, summary.json, env.json): tokens (or examples) per second,
the seconds of a step and ``perf/mfu``, each the median over the log intervals after the first
(the first holds compilation and warm-up: its excess over the steady rate is reported apart);
the training peak of CUDA memory (``mem/peak_bytes``) against ``optbench memory``'s estimate of
weights, gradients and optimizer states (:func:`optbench.tools.memory.estimate`, in the dtype the
run holds them: fp32, since bf16 runs autocast over fp32 weights), and the bytes the run itself
counted; the probe's seconds, HVPs and peak memory. The run's log does not time the optimizer
apart, so its ``step()`` is timed here, on the model and optimizer built by optbench's build path
on the same device, with random gradients, CUDA synchronised around each step (median over 20
steps after 3 of warm-up, so GaLore's first-step SVDs are excluded): its share of the case's
steady step, for the whole optimizer and for its matrix part alone (SWAN, GaLore, Muon route
embeddings, head and norms to AdamW). What a device cannot give (MFU without a known peak
FLOP/s, CUDA memory on the CPU) is null with its reason under ``na``.

Isolation: by default each case runs in a fresh interpreter (``python -m optbench run ...``,
output in its run dir's output.log): its CUDA peak and compilation are its own, and a crash (an
illegal memory access poisons a CUDA context) fails that case alone; a failing case's traceback
(``HYDRA_FULL_ERROR=1``) goes in the report and the others go on. The memory estimates and the
optimizer timings run in this process, each caught apart. Cases run in the order above, the
compiled ones last; one still running at the time budget (``--budget-s``, 360 s) is killed, and
those after it are skipped, so a partial report is written (after every case) rather than none.
``--dry`` runs the cases in this process instead (``compose -> resolve -> execute``, the path
``optbench run`` takes after Hydra's launch), exceptions caught per case all the same: on a
busy 2-core CPU its three cases took 10 s this way, 44 s as subprocesses (each pays the imports).

    python benchmarks/gpu_check.py [--out runs/gpu_check] [--runs DIR] [--only 'llama60m/muon/*']
    python benchmarks/gpu_check.py --dry      # CPU-sized (make gpu-check-dry; tests/test_gpu_check.py)

Exit status: 0 when every case is ok, 1 when one failed or was skipped, 2 without a CUDA device
(full check).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import fnmatch
import functools
import gc
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from optbench import contract
from optbench.loggers.jsonl import read_metrics
from optbench.runner.build import build
from optbench.runner.config import Precision, compose
from optbench.runner.execute import execute
from optbench.runner.perf import peak_flops
from optbench.runner.run_dir import RunDir
from optbench.runner.spec import resolve
from optbench.tools.memory import estimate

OPTIMIZERS = ("adamw", "swan", "galore", "muon")
BUDGET_S = 360.0
OPTIMIZER_WARMUP, OPTIMIZER_REPEATS = 3, 20
MB = 2**20


@dataclass(frozen=True)
class Case:
    name: str
    task: str
    optimizer: str
    overrides: tuple[str, ...]  # besides task= and optimizer=
    time_optimizer: bool = False  # time optimizer.step() apart (LLaMA cases)

    @property
    def command(self) -> list[str]:
        return [f"task={self.task}", f"optimizer={self.optimizer}", *self.overrides]


def _train(steps: int, log_every: int) -> tuple[str, ...]:
    """No evaluation but the first and the last; the final checkpoint is deleted after reading."""
    return ("logger=none", f"train.steps={steps}", f"train.log_every={log_every}",
            f"train.eval_every={steps}", f"train.checkpoint_every={steps}")


def full_cases(device: str = "cuda") -> list[Case]:
    lm = ("data=synthetic", f"device={device}", "precision=bf16", "task.sequences_per_step=128",
          "task.micro_batch=128", "task.eval_tokens=65536")
    cases = [Case(f"llama60m/{opt}/eager", "llama60m", opt, (*lm, *_train(200, 20)), time_optimizer=True)
             for opt in OPTIMIZERS]
    cases.append(Case("llama60m/adamw/probe", "llama60m", "adamw",
                      (*lm, *_train(100, 20), "diagnostics=sharpness", "diagnostics.every=50")))
    cifar = (f"device={device}", "precision=bf16", "task.data=synthetic", "task.batch_size=512")
    cases += [Case(f"cifar10/{model}/eager", "cifar10", "sgd", (*cifar, f"task.model={model}", *_train(100, 10)))
              for model in ("airbench", "resnet18")]
    # compiled last: compilation is the slowest and least predictable part
    cases += [Case(f"llama60m/{opt}/compiled", "llama60m", opt, (*lm, *_train(200, 20), "train.compile=true"),
                   time_optimizer=True) for opt in OPTIMIZERS]
    return cases


def dry_cases() -> list[Case]:
    lm = ("device=cpu", "precision=fp32", "task.hidden=64", "task.intermediate=128", "task.heads=1",
          "task.layers=2", "task.seq_len=32", "task.sequences_per_step=8", "task.micro_batch=8",
          "task.eval_tokens=256", "task.probe_sequences=2")
    return [
        Case("llama_tiny/swan/eager", "llama_tiny", "swan", (*lm, *_train(4, 1)), time_optimizer=True),
        Case("llama_tiny/adamw/probe", "llama_tiny", "adamw",
             (*lm, *_train(2, 1), "diagnostics=sharpness", "diagnostics.every=2", "diagnostics.max_iters=4")),
        Case("cifar10/airbench/eager", "cifar10", "sgd",
             ("device=cpu", "task.data=synthetic", "task.model=airbench", "task.width=16",
              "task.synthetic_train=256", "task.synthetic_test=64", "task.batch_size=32", *_train(4, 1))),
    ]


# -- one case ------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    command: list[str]
    status: str = "ok"  # ok | failed | skipped
    run_status: str | None = None  # summary.json's
    seconds: float = 0.0  # wall time of the case, run and measurements
    run_dir: str | None = None
    work_unit: str | None = None  # tokens | examples
    metrics: dict[str, float | None] = field(default_factory=dict)
    na: dict[str, str] = field(default_factory=dict)  # why a metric is null
    errors: list[dict[str, str]] = field(default_factory=list)  # stage, message, traceback

    def fail(self, stage: str, message: str, trace: str = "") -> None:
        self.status = "failed"
        self.errors.append({"stage": stage, "message": message, "traceback": trace})

    def put(self, key: str, value: float | None, reason: str = "") -> None:
        """A metric, or null with the reason; a non-finite value is null too, with the value."""
        if value is not None and not math.isfinite(value):
            value, reason = None, f"non-finite value {value}"
        self.metrics[key] = value
        if value is None:
            self.na[key] = reason

    def finish(self) -> Result:
        """Every metric of METRICS, in order: one a failed or skipped stage left is null too."""
        why = "not measured: the case " + ("failed" if self.status == "failed" else "was skipped")
        for key in METRICS:
            if key not in self.metrics:
                self.put(key, None, why)
        self.metrics = {k: self.metrics[k] for k in METRICS}
        return self


METRICS = ("throughput", "step_seconds", "warmup_seconds", "mfu", "peak_bytes", "memory_estimate_bytes",
           "counted_bytes", "peak_over_estimate", "optimizer_step_seconds", "optimizer_step_percent",
           "matrix_step_seconds", "matrix_step_percent", "probe_seconds", "probe_hvps",
           "probe_peak_bytes", "lambda_max")


@contextlib.contextmanager
def _stage(result: Result, stage: str) -> Iterator[None]:
    """Record an exception of ``stage`` in ``result`` and go on with the next stage."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - whatever it is, a failing case must not stop the others
        result.fail(stage, f"{type(err).__name__}: {err}".splitlines()[0], traceback.format_exc())


def _tail(text: str) -> str:
    """The last traceback in ``text`` (its last 60 lines), else the last 20 lines of ``text``."""
    at = text.rfind("Traceback (most recent call last)")
    return "\n".join(text[at:].splitlines()[-60:] if at >= 0 else text.splitlines()[-20:])


def run_subprocess(case: Case, run_dir: Path, timeout: float, threads: int | None) -> tuple[str, str] | None:
    """``python -m optbench run`` in its own process group, output to run_dir/output.log;
    (message, traceback) when it did not exit 0."""
    run_dir.mkdir(parents=True)
    env = {**os.environ, "HYDRA_FULL_ERROR": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "120",
           **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    log = run_dir / "output.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "optbench", "run", *case.command, f"hydra.run.dir={run_dir}"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # with its compile workers
            proc.wait()
            return f"killed after {timeout:.0f} s: the time budget ran out", _tail(log.read_text())
    return None if code == 0 else (f"optbench run exited {code}", _tail(log.read_text()))


@functools.cache
def composed(command: tuple[str, ...]) -> DictConfig:
    """The config of ``optbench run COMMAND``, composed once (composition takes a good part of a
    second); nothing here changes it (``resolve`` works on a copy)."""
    return compose(list(command))


def run_in_process(case: Case, run_dir: Path, device: torch.device) -> None:
    """``optbench run``'s path after Hydra's launch, in this process, with a clean CUDA slate."""
    if device.type == "cuda":
        torch._dynamo.reset()
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    execute(resolve(composed(tuple(case.command)), run_dir, task=case.task, optimizer=case.optimizer,
                    overrides=case.command))


def _median_seconds(step: Callable[[], Any], device: torch.device, repeats: int) -> float:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(OPTIMIZER_WARMUP):
        step()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_optimizer(case: Case, repeats: int) -> tuple[float, float | None]:
    """Median seconds of the whole optimizer's step and of its matrix part (None without one).
    Once per configuration: compiling the model (``train.compile``) leaves the optimizer as it is."""
    return _optimizer_seconds(tuple(o for o in case.command if not o.startswith("train.compile=")), repeats)


@functools.cache
def _optimizer_seconds(command: tuple[str, ...], repeats: int) -> tuple[float, float | None]:
    """Built as the run builds it, with random gradients on every parameter."""
    spec = resolve(composed(command))
    built = build(spec)
    generator = torch.Generator(device=spec.device).manual_seed(0)
    for p in built.model.parameters():
        p.grad = torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype) * 1e-3
    whole = _median_seconds(built.optimizer.step, spec.device, repeats)
    matrix = getattr(built.optimizer, "parts", {}).get("matrix")
    part = _median_seconds(matrix.step, spec.device, repeats) if matrix is not None else None
    del built
    if spec.device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
    return whole, part


def memory_estimate(case: Case) -> int:
    """``optbench memory``'s total (weights, gradients, states) in the dtype the run holds them."""
    cfg = copy.deepcopy(composed(tuple(case.command)))
    cfg.precision = "fp64" if cfg.precision == Precision.fp64 else "fp32"
    return estimate(cfg).total


# -- reading a run dir ---------------------------------------------------------------------------


def _median(lines: list[dict[str, Any]], key: str) -> float | None:
    values = [float(line[key]) for line in lines if key in line]
    return statistics.median(values) if values else None


def read_run(result: Result, run_dir: Path, device: torch.device) -> None:
    """The run's status and the metrics of its run dir."""
    summary = RunDir(run_dir).read_summary()
    result.run_status = None if summary is None else str(summary.status)
    if summary is None or summary.status != contract.RunStatus.COMPLETED:
        reason = (f"run {summary.status}: {summary.reason}" if summary
                  else "no summary.json: refused before it started")
        ran = [e for e in result.errors if e["stage"] == "run"]
        if not ran:
            result.fail("run", reason)
        elif summary is not None and summary.reason and summary.reason not in ran[0]["message"]:
            ran[0]["message"] += f"; {reason}"
    records = read_metrics(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    train = [r for r in records if contract.TRAIN_LOSS in r]
    unit = contract.TOKENS if any(contract.TOKENS in r for r in records) else contract.EXAMPLES
    result.work_unit = unit
    steady = train[1:]
    few = "fewer than two log intervals"
    result.put("throughput", _median(steady, contract.throughput(unit)), few)
    step_seconds = _median(steady, contract.STEP_SECONDS)
    result.put("step_seconds", step_seconds, few)
    warmup = (train[0][contract.TRAIN_SECONDS] - step_seconds * train[0][contract.STEP]
              if step_seconds is not None else None)
    result.put("warmup_seconds", warmup, few)
    cpu = device.type != "cuda"
    if cpu:
        no_mfu = "MFU needs a GPU's peak FLOP/s (optbench/runner/perf.py); this ran on the CPU"
    elif peak_flops(device) is None:
        no_mfu = f"{torch.cuda.get_device_name(device)} is not in optbench/runner/perf.py's peak table"
    else:
        no_mfu = f"the task declares no FLOPs per {unit[:-1]} (flops_per_work)" if steady else few
    result.put("mfu", _median(steady, contract.MFU), no_mfu)
    last = train[-1] if train else {}
    no_cuda = "CUDA memory needs a GPU; on the CPU mem/*peak_bytes is the process's peak resident set"
    result.put("peak_bytes", None if cpu else last.get(contract.PEAK_BYTES), no_cuda if cpu else "no training line")
    parts = (contract.PARAM_BYTES, contract.GRAD_BYTES, contract.OPTIMIZER_STATE_BYTES)
    counted = sum(last[k] for k in parts) if all(k in last for k in parts) else None
    result.put("counted_bytes", counted, "no training line")
    probes = [r for r in records if "sharpness/seconds" in r]
    no_probe = "no probe in this case"
    result.put("probe_seconds", _median(probes, "sharpness/seconds"), no_probe)
    result.put("probe_hvps", _median(probes, "sharpness/hvps"), no_probe)
    probe_peak = None if cpu else _median(probes, contract.PROBE_PEAK_BYTES)
    result.put("probe_peak_bytes", probe_peak, no_cuda if cpu and probes else no_probe)
    result.put("lambda_max", float(probes[-1][contract.LAMBDA_MAX]) if probes else None, no_probe)


def measure(result: Result, case: Case, repeats: int) -> None:
    """What the run dir does not hold: the memory estimate and the optimizer's step time."""
    with _stage(result, "memory estimate"):
        result.put("memory_estimate_bytes", memory_estimate(case))
        peak, est = result.metrics.get("peak_bytes"), result.metrics["memory_estimate_bytes"]
        result.put("peak_over_estimate", peak / est if peak is not None and est else None,
                   result.na.get("peak_bytes", "a zero estimate"))
    timed = ("optimizer_step_seconds", "optimizer_step_percent", "matrix_step_seconds", "matrix_step_percent")
    if not case.time_optimizer:
        for key in timed:
            result.put(key, None, "timed in the LLaMA training cases only")
        return
    with _stage(result, "optimizer step"):
        whole, part = time_optimizer(case, repeats)
        step, no_step = result.metrics.get("step_seconds"), result.na.get("step_seconds", "")
        no_part = "no matrix part: one optimizer steps every parameter"
        result.put("optimizer_step_seconds", whole)
        result.put("optimizer_step_percent", 100 * whole / step if step else None, no_step)
        result.put("matrix_step_seconds", part, no_part)
        result.put("matrix_step_percent", 100 * part / step if part is not None and step else None,
                   no_step if part is not None else no_part)


def run_case(case: Case, runs: Path, device: torch.device, *, in_process: bool, deadline: float,
             threads: int | None, repeats: int) -> Result:
    """Run ``case`` into its run dir under ``runs``, read it, measure what it does not hold."""
    result = Result(case.name, ["optbench", "run", *case.command])
    started = time.perf_counter()
    if started >= deadline:
        result.status = "skipped"
        result.errors.append({"stage": "run", "message": "the time budget was spent", "traceback": ""})
        return result.finish()
    run_dir = runs / case.name.replace("/", "-")
    result.run_dir = str(run_dir)
    with _stage(result, "run"):
        if in_process:
            run_in_process(case, run_dir, device)
        else:
            failure = run_subprocess(case, run_dir, deadline - started, threads)
            if failure:
                result.fail("run", *failure)
    with _stage(result, "read run dir"):
        read_run(result, run_dir, device)
    if result.run_status is not None:  # a run refused before it started has nothing to measure
        measure(result, case, repeats)
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (run_dir / name).unlink(missing_ok=True)
    result.seconds = time.perf_counter() - started
    return result.finish()


# -- the report ----------------------------------------------------------------------------------


def device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"device": str(device), "torch": torch.__version__, "cuda": torch.version.cuda,
                            "peak_bf16_flops": peak_flops(device)}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
    return info


def _fmt(value: Any, scale: float = 1.0, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value * scale:,.{digits}f}"


HOW_TO_READ = (
    "Work/s, step time and MFU: medians over the log intervals after the first; warm-up: the first "
    "interval's excess over them (compilation, allocator). Memory: the training peak against "
    "`optbench memory`'s weights + gradients + optimizer states in fp32, as the run holds them; "
    "counted: those bytes as the run itself counted them. Optimizer step: `step()` timed apart on "
    "the model and optimizer as optbench builds them (once per optimizer: compiling the model leaves "
    "it as it is), as a percent of the case's step; matrix: the matrix optimizer alone, without the "
    "AdamW it routes embeddings, head and norms to."
)
COLUMNS = ("case", "status", "work/s", "step ms", "warm-up s", "MFU %", "peak MiB", "estimate MiB",
           "counted MiB", "peak/est", "opt step %", "matrix %")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown(report: dict[str, Any]) -> str:
    dev = report["device"]
    where = (f"{dev.get('name', dev['device'])}, torch {dev['torch']}, CUDA {dev['cuda']}; isolation: "
             f"{report['isolation']}; {report['seconds']:.0f} s from {report['started']}; run dirs in "
             f"{report['runs']}.")
    lines = [f"# optbench GPU check ({report['mode']})", "", where, "", HOW_TO_READ, "",
             _row(list(COLUMNS)), _row(["---"] * len(COLUMNS))]
    for c in report["cases"]:
        m = c["metrics"]
        lines.append(_row([
            c["name"], c["status"], f"{_fmt(m['throughput'], digits=0)} {c['work_unit'] or ''}",
            _fmt(m["step_seconds"], 1e3), _fmt(m["warmup_seconds"]), _fmt(m["mfu"], 100),
            _fmt(m["peak_bytes"], 1 / MB, 0), _fmt(m["memory_estimate_bytes"], 1 / MB, 0),
            _fmt(m["counted_bytes"], 1 / MB, 0), _fmt(m["peak_over_estimate"], digits=2),
            _fmt(m["optimizer_step_percent"]), _fmt(m["matrix_step_percent"])]))
    probes = [c for c in report["cases"] if c["metrics"].get("probe_seconds") is not None]
    if probes:
        lines += ["", _row(["probe", "seconds (median)", "HVPs", "peak MiB", "λ_max"]), _row(["---"] * 5)]
        for c in probes:
            m = c["metrics"]
            lines.append(_row([c["name"], _fmt(m["probe_seconds"], digits=2), _fmt(m["probe_hvps"], digits=0),
                               _fmt(m["probe_peak_bytes"], 1 / MB, 0), _fmt(m["lambda_max"], digits=4)]))
    reasons: dict[tuple[str, tuple[str, ...]], list[str]] = {}  # (reason, cases): metrics
    for key in METRICS:
        for reason in dict.fromkeys(c["na"][key] for c in report["cases"] if key in c["na"]):
            names = tuple(c["name"] for c in report["cases"] if c["na"].get(key) == reason)
            reasons.setdefault((reason, names), []).append(key)
    if reasons:
        lines += ["", "## n/a", ""]
        lines += [f"- {', '.join(keys)}: {why} ({', '.join(names)})" for (why, names), keys in reasons.items()]
    failed = [c for c in report["cases"] if c["errors"]]
    if failed:
        lines += ["", "## Failures"]
        for c in failed:
            lines += ["", f"### {c['name']} ({c['status']})", "", f"`{' '.join(c['command'])}`"]
            for e in c["errors"]:
                lines += ["", f"{e['stage']}: {e['message']}"]
                if e["traceback"]:
                    lines += ["", "```", e["traceback"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


def write_report(out: Path, report: dict[str, Any]) -> None:
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    (out / "gpu_check.md").write_text(markdown(report))


def check(cases: list[Case], out: Path, device: torch.device, *, mode: str, in_process: bool,
          runs: Path | None = None, budget_s: float = BUDGET_S, threads: int | None = None,
          repeats: int = OPTIMIZER_REPEATS) -> dict[str, Any]:
    """Run ``cases`` one after the other, each into its run dir in a new time-stamped folder of
    ``runs`` (default: OUT/runs), writing the report after each case."""
    started = time.perf_counter()
    stamp = datetime.now(timezone.utc)
    (runs := runs or out / "runs").mkdir(parents=True, exist_ok=True)
    runs = Path(tempfile.mkdtemp(prefix=stamp.strftime("%Y%m%d-%H%M%S-"), dir=runs))
    report: dict[str, Any] = {"mode": mode, "device": device_info(device),
                              "isolation": "in-process" if in_process else "subprocess",
                              "started": stamp.isoformat(timespec="seconds"), "seconds": 0.0,
                              "runs": str(runs), "cases": []}
    out.mkdir(parents=True, exist_ok=True)
    for case in cases:
        result = run_case(case, runs, device, in_process=in_process, deadline=started + budget_s,
                          threads=threads, repeats=repeats)
        report["cases"].append(dataclasses.asdict(result))
        env = Path(result.run_dir) / "env.json" if result.run_dir else None
        if "env" not in report and env and env.is_file():  # versions, git commit, device: a run's record
            report["env"] = json.loads(env.read_text())
        report["seconds"] = time.perf_counter() - started
        write_report(out, report)
        print(f"{result.status:>7}  {case.name}  {result.seconds:.1f} s", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="CPU-sized cases, run in this process (CI)")
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_check"),
                        help="where gpu_check.json, gpu_check.md and runs/ go")
    parser.add_argument("--runs", type=Path, default=None,
                        help="where the run dirs go (default: OUT/runs); checkpoints are deleted")
    parser.add_argument("--only", action="append", metavar="PATTERN",
                        help="cases whose name matches (fnmatch, e.g. 'llama60m/muon/*'); repeatable")
    parser.add_argument("--budget-s", type=float, default=BUDGET_S, help="later cases are skipped past it")
    parser.add_argument("--isolation", choices=("subprocess", "in-process"), default=None,
                        help="how each case runs (default: subprocess; in-process with --dry)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: 1 with --dry)")
    args = parser.parse_args(argv)
    if not args.dry and not torch.cuda.is_available():
        print("error: the full check needs a CUDA device and none is visible; "
              "use --dry for the CPU-sized check", file=sys.stderr)
        return 2
    threads = args.threads or (1 if args.dry else None)
    if threads:
        torch.set_num_threads(threads)
    cases = dry_cases() if args.dry else full_cases()
    if args.only:
        cases = [c for c in cases if any(fnmatch.fnmatch(c.name, p) for p in args.only)]
    device = torch.device("cpu" if args.dry else "cuda")
    in_process = (args.isolation or ("in-process" if args.dry else "subprocess")) == "in-process"
    report = check(cases, args.out, device, mode="dry" if args.dry else "full", in_process=in_process,
                   runs=args.runs, budget_s=args.budget_s, threads=threads, repeats=3 if args.dry else OPTIMIZER_REPEATS)
    print(f"report: {args.out / 'gpu_check.md'}, {args.out / 'gpu_check.json'}")
    return 0 if all(c["status"] == "ok" for c in report["cases"]) else 1


if __name__ == "__main__":
    sys.exit(main())
