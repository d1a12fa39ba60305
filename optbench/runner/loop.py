"""The training loop: batch -> loss -> backward -> clip -> step -> schedule, with logging,
evaluation and checkpoints at their cadences (docs/architecture.md §2).

The training clock (``perf/step_seconds``) covers the steps alone: evaluation and checkpoints run
between clock intervals. ``train/loss`` is the mean loss over the steps since the last log. Every
metrics line also carries the work so far (tokens or examples) and the training clock so far
(``perf/train_seconds``, over all sessions), so a curve can be read against steps, work or time.

With ``train.ema``, an EMA of the weights is updated after every step and evaluated beside them
(:mod:`optbench.runner.averaging`); with ``target.metric``, the loop follows where the metric
first meets ``target.value`` (:mod:`optbench.runner.target`) and, with ``target.stop``, ends the
run there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch.nn.attention import SDPBackend, sdpa_kernel

from optbench import contract
from optbench.contract import BatchStream, RunStatus, Sink, has_train_eval_modes, needs_create_graph
from optbench.errors import OptbenchError
from optbench.runner import distributed, memory
from optbench.runner.averaging import as_ema, build_average
from optbench.runner.build import Built, build_schedule
from optbench.runner.checkpoint import save_checkpoint, save_latest
from optbench.runner.config import Precision, TargetConfig, TrainConfig
from optbench.runner.device import autocast
from optbench.runner.perf import peak_flops
from optbench.runner.run_dir import RunDir
from optbench.runner.seeding import restore_rng_states, rng_states
from optbench.runner.signals import StopRequest
from optbench.runner.target import Crossing, first_crossing, summary_record


@dataclass
class LoopState:
    """What the loop carries between steps; saved in checkpoints."""

    step: int = 0
    work: int = 0  # work units (examples or tokens) consumed so far
    first_loss: float | None = None
    wall_seconds: float = 0.0  # over all sessions of this run
    train_seconds: float = 0.0  # the training clock, over all sessions (and the warm start's source)
    start_step: int = 0  # 0, or the step of the checkpoint this run was warm-started from
    interval_loss: torch.Tensor | None = None  # sum of step losses since the last log
    interval_steps: int = 0
    interval_work: int = 0
    # the latest value of every metric: a run's final metrics, also when it resumes at its end
    latest: dict[str, float] = field(default_factory=dict)
    # the target (target.*): the last line holding its metric, and where it was first met
    target_line: dict[str, float] | None = None
    target_crossing: dict[str, Any] | None = None  # a Crossing's fields


@dataclass
class Outcome:
    status: RunStatus  # completed, diverged, or interrupted by a signal
    reason: str | None = None
    final: dict[str, float] = field(default_factory=dict)
    signal: int | None = None  # the signal that stopped the run


class Trainer:
    def __init__(self, cfg: DictConfig, built: Built, stream: BatchStream, device: torch.device,
                 run_dir: RunDir, identity: dict[str, Any] | None = None) -> None:
        """``identity``: recorded in every checkpoint, so a resume can tell whose state it is."""
        self.cfg = cfg
        # plain objects for what the loop reads at every step: an OmegaConf attribute read costs
        # microseconds, a sizeable share of a small model's step
        self.train_cfg: TrainConfig = OmegaConf.to_object(cfg.train)
        self.target: TargetConfig = OmegaConf.to_object(cfg.target)
        self.precision: Precision = cfg.precision
        self.task, self.model, self.optimizer = built.task, built.model, built.optimizer
        self.scheduler, self.probe, self.parallel = built.schedule, built.probe, built.parallel
        self.stream, self.device, self.run_dir, self.identity = stream, device, run_dir, identity
        # training steps may run compiled; evaluation, probes and checkpoints use the module itself
        self.forward_model = torch.compile(self.parallel) if self.train_cfg.compile else self.parallel
        self.peaks = memory.PeakTracker(device)
        # mfu = work/s × this: the work is the whole job's (every rank's), so the peak is too
        flops, peak = self.task.flops_per_work(), peak_flops(device)
        self.mfu_scale = flops / (peak * distributed.world_size()) if flops and peak else None
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.create_graph = needs_create_graph(self.optimizer)
        self.modes = has_train_eval_modes(self.optimizer)
        self.average = build_average(self.model, self.train_cfg.ema)
        self.work_key = self.task.work_unit  # tokens or examples
        self.state = LoopState()
        self.resumed = False  # from this run's own checkpoint: its first evaluation is done
        self._opening: dict[str, float] | None = None  # the first evaluation, until it is logged

    # -- checkpoints -------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Every rank calls it (gathering FSDP shards is collective); rank 0 writes it."""
        state = {
            "model": distributed.full_state(self.model.state_dict()),
            "optimizer": distributed.full_state(self.optimizer.state_dict()),
            "scheduler": self.scheduler.state_dict(),
            "stream": self.stream.state_dict(),
            "rng": rng_states(self.device),
            "loop": self.state.__dict__,
            "probe": self.probe.state_dict() if self.probe else None,
            "ema": self.average.state_dict() if self.average else None,
            "identity": self.identity,
        }
        if not distributed.is_main():
            return
        save_latest(self.run_dir, state)
        if self.train_cfg.keep_checkpoints:
            save_checkpoint(self.run_dir.kept_checkpoint(self.state.step), state)

    def restore(self, checkpoint: dict[str, Any]) -> None:
        """Resume from this run's own checkpoint. The schedule's state holds its multiplier's
        fields (``LambdaLR`` saves a callable object's ``__dict__``), so a warm-started run's
        schedule resumes spanning the steps it had left."""
        self._set_state(LoopState(**checkpoint["loop"]))
        self._load_training(checkpoint)
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if self.probe:
            self.probe.load_state_dict(checkpoint["probe"])
        self.resumed = True

    def start_from(self, checkpoint: dict[str, Any], state: LoopState) -> None:
        """Begin at another run's checkpoint (a warm start, :mod:`optbench.runner.warm_start`)
        with loop state ``state``, and a fresh schedule over the steps left, from its step 0."""
        self._load_training(checkpoint)
        self._set_state(state)
        self.scheduler = build_schedule(self.cfg, self.optimizer, self.train_cfg.steps - state.start_step)

    def _load_training(self, checkpoint: dict[str, Any]) -> None:
        """Weights, optimizer state, data position, RNG states and the EMA of the weights (which
        starts from the loaded weights when the checkpoint holds none)."""
        distributed.load_full_state(self.model, self.optimizer, checkpoint["model"], checkpoint["optimizer"])
        self.stream.load_state_dict(checkpoint["stream"])
        restore_rng_states(checkpoint["rng"], self.device)
        if self.average is not None and checkpoint.get("ema") is not None:
            self.average.load_state_dict(checkpoint["ema"])
        elif self.average is not None:
            self.average = build_average(self.model, self.train_cfg.ema)

    def _set_state(self, state: LoopState) -> None:
        self.state = state
        if state.interval_loss is not None:
            state.interval_loss = state.interval_loss.to(self.device)

    def _attention(self) -> contextlib.AbstractContextManager:
        """A backward that keeps its graph needs attention kernels with second derivatives."""
        return sdpa_kernel(SDPBackend.MATH) if self.create_graph else contextlib.nullcontext()

    # -- one step ----------------------------------------------------------------------------
    def _step(self, measure: bool) -> dict[str, float]:
        """One optimizer step. With ``measure``, also return the gradient norm and bytes.

        Under torchrun each rank trains on its share of every micro-batch, its loss weighted by
        its share of the step's weight times the world size: DDP's average of the ranks'
        gradients is then the gradient of the whole step batch's loss, as in one process.
        """
        micro_batches = next(self.stream)
        world, rank = distributed.world_size(), distributed.rank()
        shards = [self.task.shard(mb, rank, world) for mb in micro_batches] if world > 1 else micro_batches
        total = sum(self.task.loss_weight(mb) for mb in micro_batches)
        step_loss = torch.zeros((), device=self.device)
        for i, mb in enumerate(shards):
            weight = self.task.loss_weight(mb) / total
            with distributed.gradient_sync(self.parallel, sync=i == len(shards) - 1):
                with autocast(self.device, self.precision), self._attention():
                    loss = self.task.loss(self.forward_model, mb)
                (loss * (world * weight)).backward(create_graph=self.create_graph)
            step_loss += loss.detach().float() * weight
        distributed.all_reduce_sum(step_loss)  # the whole step batch's loss
        measured: dict[str, float] = {}
        clip = self.train_cfg.grad_clip
        if clip is not None:
            measured[contract.GRAD_NORM] = torch.nn.utils.clip_grad_norm_(self.params, clip)
        elif measure:
            grads = [p.grad for p in self.params if p.grad is not None]
            measured[contract.GRAD_NORM] = torch.nn.utils.get_total_norm(grads)
        if measure:
            measured[contract.LR] = self.scheduler.get_last_lr()[0]
            measured[contract.GRAD_BYTES] = memory.tensor_bytes(
                p.grad for p in self.params if p.grad is not None)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.average is not None:
            self.average.update_parameters(self.model)

        s = self.state
        s.interval_loss = step_loss if s.interval_loss is None else s.interval_loss + step_loss
        s.interval_steps += 1
        work = sum(self.task.work(mb) for mb in micro_batches)  # every rank holds the whole step batch
        s.interval_work += work
        s.work += work
        s.step += 1
        if s.first_loss is None:
            s.first_loss = step_loss.item()
        return measured

    # -- logging -----------------------------------------------------------------------------
    def _train_metrics(self, measured: dict[str, float], seconds: float) -> dict[str, float]:
        s = self.state
        throughput = contract.throughput(self.task.work_unit)
        metrics = {
            contract.TRAIN_LOSS: (s.interval_loss / s.interval_steps).item(),
            **{k: v.item() if isinstance(v, torch.Tensor) else v for k, v in measured.items()},
            contract.STEP_SECONDS: seconds / s.interval_steps,
            throughput: s.interval_work / seconds if seconds else 0.0,
            contract.PARAM_BYTES: memory.param_bytes(self.model),
            contract.OPTIMIZER_STATE_BYTES: memory.optimizer_state_bytes(self.optimizer),
            contract.PEAK_BYTES: self.peaks.training(),
        }
        if self.mfu_scale is not None:
            metrics[contract.MFU] = metrics[throughput] * self.mfu_scale
        s.interval_loss, s.interval_steps, s.interval_work = None, 0, 0
        return metrics

    def _divergence(self, loss: float) -> str | None:
        if not math.isfinite(loss):
            return f"train/loss is {loss} at step {self.state.step}"
        factor = self.train_cfg.divergence_factor
        first = self.state.first_loss
        if first is not None and math.isfinite(first) and abs(loss) > factor * max(abs(first), 1e-12):
            return (f"train/loss {loss:.4g} at step {self.state.step} exceeds "
                    f"train.divergence_factor={factor:g} × the first loss {first:.4g}")
        return None

    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        if self.modes:
            self.optimizer.eval()
        with torch.no_grad(), autocast(self.device, self.precision):
            metrics = self.task.evaluate(self.model)
            if self.average is not None:
                metrics.update(as_ema(self.task.evaluate(self.average.module)))
        self.model.train()
        if self.modes:
            self.optimizer.train()
        return metrics

    def sharpness(self) -> dict[str, float]:
        """A curvature probe at the current weights, with its own peak memory."""
        metrics, peak = self.peaks.probe(
            lambda: self.probe(self.task, self.model, self.optimizer, self.state.step))
        return {**metrics, contract.PROBE_PEAK_BYTES: peak}

    def _stop_signal(self, stop: StopRequest | None, pause: bool) -> int:
        """The signal that asks the run to stop after this step, 0 if none. Under torchrun the
        ranks agree on it at the steps that pause the clock anyway (log, eval, checkpoint,
        probe): a host sync at every step would stall the GPUs."""
        if stop is None:
            return 0
        if distributed.world_size() == 1:
            return stop.signal or 0
        return distributed.agree_max(stop.signal or 0, self.device) if pause else 0

    # -- the first evaluation and the target -------------------------------------------------
    def first_evaluation(self) -> dict[str, float]:
        """The evaluation a run starts with (at step 0, or at the step it was warm-started from),
        kept for :meth:`run` to log. Done before any sink exists (execute calls it first), a
        target metric the run does not log is refused in one line, with nothing logged."""
        if self._opening is None:
            evaluation = self.evaluate()
            self._check_target_metric(evaluation)
            self._opening = {**evaluation, **(self.sharpness() if self.probe else {})}
        return self._opening

    def _check_target_metric(self, evaluation: dict[str, float]) -> None:
        metric = self.target.metric
        logged = [*evaluation, contract.TRAIN_LOSS]
        if metric is not None and metric not in logged:
            raise OptbenchError(f"target.metric={metric} is not a metric this run logs; "
                                f"it logs: {', '.join(logged)}")

    def _follow_target(self, step: int, line: dict[str, float]) -> None:
        """Record where the target's metric first meets its value, from this line and the last
        one that held the metric."""
        target, s = self.target, self.state
        if target.metric is None or s.target_crossing is not None or target.metric not in line:
            return
        point = {contract.STEP: step, target.metric: line[target.metric], self.work_key: line[self.work_key],
                 contract.TRAIN_SECONDS: line[contract.TRAIN_SECONDS]}
        seen = [p for p in (s.target_line, point) if p is not None]
        crossing = first_crossing(seen, target.metric, target.value, target.mode, self.work_key)
        s.target_line = point
        if crossing is not None:
            s.target_crossing = dataclasses.asdict(crossing)

    def target_record(self) -> dict[str, Any] | None:
        """``summary.json``'s ``target``, or None without a target."""
        target, crossing = self.target, self.state.target_crossing
        if target.metric is None:
            return None
        return summary_record(target.metric, target.value, target.mode,
                              Crossing(**crossing) if crossing else None, self.task.flops_per_work())

    def _target_stops(self) -> bool:
        return bool(self.target.stop) and self.state.target_crossing is not None

    # -- the loop ----------------------------------------------------------------------------
    def run(self, sinks: list[Sink], stop: StopRequest | None = None) -> Outcome:
        """Train to ``train.steps``; ``stop``: set by a signal, it ends the run after the step in
        progress, with a checkpoint at that step. A run that starts (at step 0, or at the step
        it was warm-started from) evaluates first; with ``target.stop`` it ends (completed) at
        the evaluation that first meets the target."""
        cfg, s = self.train_cfg, self.state

        def emit(step: int, metrics: dict[str, float]) -> None:
            line = {**metrics, self.work_key: s.work, contract.TRAIN_SECONDS: s.train_seconds}
            s.latest.update(line)
            self._follow_target(step, line)
            for sink in sinks:
                sink.log(step, line)

        if not self.resumed:
            emit(s.step, self.first_evaluation())
        if self._target_stops():  # at the first evaluation, or resumed after stopping there
            return Outcome(RunStatus.COMPLETED, None, dict(s.latest))
        self.model.train()
        if self.modes:
            self.optimizer.train()
        session_start = time.perf_counter()
        wall_before = s.wall_seconds
        clock_start, clock = time.perf_counter(), 0.0
        while s.step < cfg.steps:
            next_step = s.step + 1
            log_now = next_step % cfg.log_every == 0 or next_step == cfg.steps
            eval_now = next_step % cfg.eval_every == 0 or next_step == cfg.steps
            save_now = next_step % cfg.checkpoint_every == 0 or next_step == cfg.steps
            probe_now = self.probe is not None and self.probe.due(next_step)
            pause = log_now or eval_now or save_now or probe_now
            measured = self._step(measure=log_now)
            if pause:  # stop the training clock
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                elapsed = time.perf_counter() - clock_start
                clock += elapsed
                s.train_seconds += elapsed
            metrics: dict[str, float] = {}
            if log_now:
                metrics = self._train_metrics(measured, clock)
                clock = 0.0
                reason = distributed.agree(self._divergence(metrics[contract.TRAIN_LOSS]))
                if reason:
                    emit(s.step, metrics)
                    return Outcome(RunStatus.DIVERGED, reason, dict(self.state.latest))
            if eval_now:
                metrics.update(self.evaluate())
            if probe_now:
                metrics.update(self.sharpness())
            if metrics:
                emit(s.step, metrics)
            signum = self._stop_signal(stop, pause)
            reached = self._target_stops()
            if signum and not pause:  # stopped between clock pauses: its steps count too
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                s.train_seconds += time.perf_counter() - clock_start
            if save_now or signum or reached:
                s.wall_seconds = wall_before + time.perf_counter() - session_start
                self.checkpoint()
            if signum:
                name = signal.Signals(signum).name
                return Outcome(RunStatus.INTERRUPTED, f"stopped by {name} after step {s.step}, checkpointed; "
                               "run it again to resume", dict(self.state.latest), signum)
            if reached:
                return Outcome(RunStatus.COMPLETED, None, dict(self.state.latest))
            if pause:
                clock_start = time.perf_counter()
        s.wall_seconds = wall_before + time.perf_counter() - session_start
        return Outcome(RunStatus.COMPLETED, None, dict(self.state.latest))
