"""``optbench tune``: the same budget of trials for every optimizer on each task, its winner re-run
at the final seeds and frozen as a preset.

For each task: the checks (:mod:`optbench.sweeps.tune_checks`), then the protocol's rounds, each
one sweep of ``hydra/sweeper=trials`` holding every optimizer's trials at every tuning seed
(``<out>/<task>/<protocol>``, or ``coordinate-<round>``; Optuna runs one study per optimizer in
``<out>/<task>/optuna-<optimizer>``). Each trial is scored from its run dirs
(:func:`optbench.sweeps.selection.score`); the winner (:func:`optbench.sweeps.selection.best_index`) runs
at the final seeds (``<out>/<task>/final``). Written: ``<out>/tune.json``, ``<out>/trials.csv`` and
``<presets>/tuned/<task>/<optimizer>.yaml`` per winner.

Every run goes through the run store, so re-running a tune recomputes nothing and a killed tune
resumes. tune.json records the settings before the first trial; a rerun into the same ``--out``
with other settings is refused.
"""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.runner.identity import first_difference
from optbench.runner.target import Mode
from optbench.sweeps.collect import RunRecord, find_runs, lookup
from optbench.sweeps.driver import run_sweep
from optbench.sweeps.manifest import JOBS
from optbench.sweeps.protocols import (
    Proposer,
    Protocol,
    Trial,
    check_budget,
    optuna_params,
    overrides,
    proposer,
)
from optbench.sweeps.search_space import SearchSpace, load
from optbench.sweeps.selection import Score, best_index, score, signed
from optbench.sweeps.trial_list import read_trials, write_trials
from optbench.sweeps.tune_checks import check_metric, composed, defaults_of, target_of
from optbench.sweeps.tune_plan import TaskPlan, TuneOptions, TunePlan, make_plan
from optbench.sweeps.tune_record import (
    OptimizerTuning,
    TaskTuning,
    TuneRecord,
    read_tune,
    write_tune,
)
from optbench.sweeps.tune_record import Trial as TrialEntry
from optbench.sweeps.tune_report import preset_header, write_trials_csv
from optbench.sweeps.tuned_preset import write_preset


@dataclass
class Scored:
    trial: Trial
    runs: list[RunRecord]  # one per tuning seed
    score: Score


@dataclass
class Prepared:
    """A task after its checks: per optimizer its space and (but for an Optuna
    study) the proposer of its trials."""

    spaces: dict[str, SearchSpace]
    proposers: dict[str, Proposer]
    target: float | None


def _study(plan: TunePlan) -> bool:
    return plan.protocol == Protocol.optuna and plan.budget > 1


def _prepare(plan: TunePlan, task: TaskPlan) -> Prepared:
    """Check the task's configs, metric and search spaces before any run."""
    spaces, defaults, proposers, target = {}, {}, {}, task.target
    for optimizer in plan.optimizers:
        where = f"optimizer={optimizer} on task {task.name}"
        cfg = composed([*task.overrides, *plan.launch, f"optimizer={optimizer}"])
        if not spaces:
            check_metric(cfg, task.metric, task.name)
            if target is None and cfg.get("target") is not None and cfg.target.metric == task.metric:
                target = target_of(cfg)
        if plan.budget > 1:
            space = load(optimizer).narrowed(task.search, f"the search of task {task.name}")
        else:
            space = SearchSpace(optimizer, (), "the defaults (--budget 1)")
        spaces[optimizer], defaults[optimizer] = space, defaults_of(cfg, space, where)
        check_budget(space, plan.budget)
        if not _study(plan):  # its trials now: a budget the grid cannot factor fails here
            proposers[optimizer] = proposer(plan.protocol, space, defaults[optimizer], plan.budget, plan.sampler_seed)
    narrowed = [k for k, v in task.search.items() if "." in k and v is not None]
    unknown = [k for k in narrowed if not any(k in s.keys for s in spaces.values())]
    if unknown and plan.budget > 1:
        raise OptbenchError(f"the search of task {task.name} narrows {', '.join(unknown)}, which no search "
                            f"space of {', '.join(plan.optimizers)} has")
    return Prepared(spaces, proposers, target)


def _record(plan: TunePlan, prepared: dict[str, Prepared]) -> TuneRecord:
    """tune.json before any trial: the settings."""
    tasks = {}
    for task in plan.tasks:
        spaces = prepared[task.name].spaces
        tasks[task.name] = TaskTuning(
            overrides=task.overrides, metric=task.metric, mode=task.mode.value,
            target=prepared[task.name].target,
            optimizers={o: OptimizerTuning() for o in plan.optimizers},
            search={o: {d.key: d.spec() for d in spaces[o].dimensions} for o in plan.optimizers})
    return TuneRecord(protocol=plan.protocol.value, budget=plan.budget, seeds=plan.seeds,
                      final_seeds=plan.final_seeds, suite=plan.suite, tasks=tasks,
                      sampler_seed=plan.sampler_seed)


def _settings(record: TuneRecord) -> dict:
    data = record.to_json()
    for task in data["tasks"].values():
        task["optimizers"] = sorted(task["optimizers"])
    return data


def _refuse_other_settings(out: Path, record: TuneRecord) -> None:
    previous = read_tune(out)
    if previous is None:
        return
    difference = first_difference(_settings(previous), _settings(record))
    if difference:
        raise OptbenchError(f"{out} holds a tune with other settings ({difference}); give another --out, "
                            "or the same settings to resume it")


def _run_jobs(plan: TunePlan, task: TaskPlan, name: str, jobs: list[list[str]]) -> list[RunRecord]:
    """Run ``jobs`` (each a list of overrides after the task's) as the sweep ``<out>/<task>/<name>``;
    their runs, in order (a job that never started is queued)."""
    sweep_dir = plan.out / task.name / name
    trials_file = sweep_dir / "trials.json"
    if trials_file.exists() and read_trials(trials_file) != jobs:
        shutil.rmtree(sweep_dir / JOBS, ignore_errors=True)  # another round's jobs: not this one's
    write_trials(trials_file, jobs)
    run_sweep([*task.overrides, *plan.launch, "hydra/sweeper=trials",
               f"hydra.sweeper.trials_file={trials_file}", f"hydra.sweep.dir={sweep_dir}"])
    by_job = {r.job: r for r in find_runs(sweep_dir)}
    return [by_job[num] for num in range(len(jobs))]


def _job(optimizer: str, trial: Trial, seed: int) -> list[str]:
    return [f"optimizer={optimizer}", *overrides(trial), f"seed={seed}"]


def _propose(plan: TunePlan, task: TaskPlan, prepared: Prepared) -> dict[str, list[Scored]]:
    """Every trial of every optimizer through the protocol's proposers, round by round."""
    proposers = prepared.proposers
    results: dict[str, list[Scored]] = {o: [] for o in plan.optimizers}
    rounds = plan.protocol == Protocol.coordinate and plan.budget > 1
    for number in itertools.count(1):
        asked = {o: p.ask() for o, p in proposers.items()}
        jobs = [_job(o, trial, seed) for o, trials in asked.items() for trial in trials for seed in plan.seeds]
        if not jobs:
            return results
        runs = iter(_run_jobs(plan, task, f"{plan.protocol.value}-{number}" if rounds else plan.protocol.value, jobs))
        for optimizer, trials in asked.items():
            for trial in trials:
                trial_runs = [next(runs) for _ in plan.seeds]
                found = score(trial_runs, task.metric, task.mode)
                proposers[optimizer].tell(trial, signed(found, task.mode))
                results[optimizer].append(Scored(trial, trial_runs, found))
    return results


def _optuna(plan: TunePlan, task: TaskPlan, prepared: Prepared) -> dict[str, list[Scored]]:
    """One Optuna study (TPE) per optimizer, ``budget`` trials at the one tuning seed."""
    results = {}
    worst = "inf" if task.mode == Mode.min else "-inf"
    direction = "minimize" if task.mode == Mode.min else "maximize"
    for optimizer in plan.optimizers:
        space = prepared.spaces[optimizer]
        sweep_dir = plan.out / task.name / f"{plan.protocol.value}-{optimizer}"
        run_sweep([*task.overrides, *plan.launch, f"optimizer={optimizer}", f"seed={plan.seeds[0]}",
                   *optuna_params(space), "hydra/sweeper=optuna", f"hydra.sweeper.n_trials={plan.budget}",
                   f"hydra.sweeper.sampler.seed={plan.sampler_seed}", f"hydra.sweeper.direction={direction}",
                   f"objective.metric={task.metric}", f"objective.penalty={worst}", f"hydra.sweep.dir={sweep_dir}"])
        results[optimizer] = [
            Scored({k: lookup(r.config, k) for k in space.keys}, [r], score([r], task.metric, task.mode))
            for r in find_runs(sweep_dir)]
    return results


def _tune_task(plan: TunePlan, task: TaskPlan, prepared: Prepared, record: TuneRecord) -> None:
    results = (_optuna if _study(plan) else _propose)(plan, task, prepared)
    winners = {o: best_index([s.score for s in scored], task.mode) for o, scored in results.items()}
    final = [_job(o, results[o][w].trial, s) for o, w in winners.items() if w is not None for s in plan.final_seeds]
    final_runs = iter(_run_jobs(plan, task, "final", final) if final else [])
    tuning = record.tasks[task.name]
    for optimizer, scored in results.items():
        entry = tuning.optimizers[optimizer]
        entry.trials = [_trial_entry(s) for s in scored]
        entry.winner = winners[optimizer]
        if entry.winner is None:
            continue
        entry.final_run_dirs = [str(next(final_runs).path) for _ in plan.final_seeds]
        winner = [*task.overrides, f"optimizer={optimizer}", *overrides(scored[entry.winner].trial)]
        header = preset_header(record, task.name, optimizer, plan.out)
        entry.preset = str(write_preset(task.name, optimizer, winner, header))


def _trial_entry(scored: Scored) -> TrialEntry:
    return TrialEntry(overrides=overrides(scored.trial), run_dirs=[str(r.path) for r in scored.runs if r.path],
                      score=None if scored.score.failed else scored.score.value, failed=scored.score.failed,
                      reason=scored.score.reason)


def tune(options: TuneOptions) -> tuple[TuneRecord, Path]:
    """Run the tune the options describe (or resume it); return its record and output dir."""
    plan = make_plan(options)
    prepared = {task.name: _prepare(plan, task) for task in plan.tasks}
    record = _record(plan, prepared)
    _refuse_other_settings(plan.out, record)
    plan.out.mkdir(parents=True, exist_ok=True)
    write_tune(plan.out, record)
    for task in plan.tasks:
        _tune_task(plan, task, prepared[task.name], record)
        write_tune(plan.out, record)
    write_trials_csv(plan.out, record)
    return record, plan.out
