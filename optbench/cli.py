"""The `optbench` command line. Thin: it parses, delegates and prints; no training logic here.

Heavy modules (torch, Hydra, W&B) are imported inside the commands that need them, so that
`optbench --help` and `optbench list` stay fast.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from optbench.errors import OptbenchError

app = typer.Typer(
    help="Reproducible optimizer experiments: run, sweep and compare optimizers on tasks.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
out = Console()
err = Console(stderr=True)

OVERRIDES_HELP = "Hydra overrides, e.g. [bold]optimizer=adamw optimizer.lr=3e-4 train.steps=500[/]"


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Print a user mistake as one line and exit with 2; anything else is a bug and keeps its traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except OptbenchError as error:
            err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


@contextlib.contextmanager
def _start_up() -> Iterator[None]:
    """No garbage collection while a run starts, and none afterwards of what it made.

    Start-up makes some 300,000 objects that live as long as the process: torch, torch._dynamo
    (torch.optim imports it as it builds its first optimizer), Hydra, the composed config.
    CPython runs a full collection each time long-lived objects grow by a quarter, and one at
    exit; each scans them all and finds next to nothing: about a second of a 1-step run. So the
    collector waits until start-up is done, and what the process holds then is frozen
    (:func:`gc.freeze`): later collections, the one at exit among them, skip it. A start-up
    that fails (a user mistake) freezes nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if enabled:
            gc.enable()


def _split_hydra_flags(args: list[str]) -> tuple[list[str], list[str]]:
    """Overrides (key=value) and Hydra's own flags (--cfg job, --info, ...), which pass through."""
    flags = [a for a in args if a.startswith("-")]
    return [a for a in args if not a.startswith("-")], flags


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@user_errors
def run(
    overrides: Annotated[list[str] | None, typer.Argument(help=OVERRIDES_HELP, show_default=False)] = None,
    multirun: Annotated[bool, typer.Option("--multirun", "-m", help="Run a sweep: comma-separated values, range(...), or a sweeper.")] = False,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Sweeps: start in the background and return at once; follow with [bold]optbench sweep status[/].")] = False,
) -> None:
    """Run one job, or a sweep with [bold]-m[/]. Overrides go to Hydra verbatim.

    Sweep jobs run in the run store (one dir per config), so re-running a sweep skips finished
    runs and resumes unfinished ones.

    [dim]optbench run task=logreg optimizer=adam optimizer.lr=0.01[/]
    [dim]optbench run -m optimizer=sgd,adam optimizer.lr=0.1,0.01 seed=0,1,2 hydra/launcher=parallel[/]
    """
    args = list(overrides or [])
    plain, flags = _split_hydra_flags(args)
    if detach and not multirun:
        raise OptbenchError("--detach is for sweeps: add -m (optbench run -m --detach ...)")
    with _start_up():  # torch and Hydra imported; a single run's config composed and checked
        from optbench.runner import distributed
        from optbench.sweeps import launch

        single = None if multirun or flags else launch.prepare(plain, multirun=False)
    if detach and distributed.world_size() > 1:
        raise OptbenchError("--detach starts one background driver, not one per torchrun process: "
                            "under torchrun, run the sweep attached (without --detach)")
    if flags:  # Hydra's own flags (--cfg, --info, ...): Hydra handles everything
        inspect = any(f.split("=")[0] in ("--cfg", "-c", "--info", "-i", "--resolve") for f in flags)
        launch.launch([*(["--multirun"] if multirun and not inspect else []), *args])
        return
    if single is not None:
        _, cfg, output_dir = single
        launch.run_prepared(cfg, output_dir)
        return
    from optbench import views
    from optbench.contract import RunStatus
    from optbench.sweeps.driver import LOG, run_sweep

    sweep = run_sweep(plain, detach=detach)
    where = escape(str(sweep.directory))
    if sweep.manifest is None:  # a torchrun process but rank 0: rank 0 reports
        return
    if sweep.detached_pid is not None:
        out.print(f"sweep of {sweep.manifest.size or '?'} job(s) started in the background (pid "
                  f"{sweep.detached_pid}): {where}\n  follow it: optbench sweep status {where}"
                  f"\n  its log:   {escape(str(sweep.directory / LOG))}", soft_wrap=True, highlight=False)
        return
    records = _runs_table(sweep.directory, title=f"sweep {sweep.directory}")
    best = views.best_trial(sweep.directory)
    if best:
        out.print(best, highlight=False)
    if any(r.status in (RunStatus.FAILED, RunStatus.INTERRUPTED) for r in records):
        raise typer.Exit(1)


@app.command()
@user_errors
def show(
    overrides: Annotated[list[str] | None, typer.Argument(help=OVERRIDES_HELP, show_default=False)] = None,
    resolve: Annotated[bool, typer.Option(help="Resolve ${...} interpolations.")] = False,
) -> None:
    """Print the composed config of a run as YAML, without running it."""
    from omegaconf import OmegaConf

    from optbench.sweeps.launch import compose_checked

    cfg = compose_checked(list(overrides or []))
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    print(OmegaConf.to_yaml(cfg, resolve=resolve), end="")


@app.command()
@user_errors
def memory(
    overrides: Annotated[list[str] | None, typer.Argument(help=OVERRIDES_HELP, show_default=False)] = None,
) -> None:
    """Bytes of weights, gradients and optimizer states for a task and optimizer, computed on the
    meta device (no allocation), beside the GaLore paper's figures where it has them.

    [dim]optbench memory task=llama1b optimizer=galore precision=bf16[/]
    """
    from optbench import views
    from optbench.sweeps.launch import compose_checked
    from optbench.tools.memory import estimate, published

    cfg = compose_checked(list(overrides or []))
    choices = cfg.hydra.runtime.choices
    out.print(views.memory_table(choices.task, choices.optimizer, cfg.precision.value, estimate(cfg),
                                 published(choices.task, choices.optimizer)))


@app.command()
@user_errors
def sharpness(
    run_dir: Annotated[Path, typer.Argument(help="A run dir holding a checkpoint.")],
    step: Annotated[int | None, typer.Option(help="A kept checkpoint (train.keep_checkpoints=true); default: the latest.")] = None,
    k: Annotated[int, typer.Option(help="How many top eigenvalues.")] = 3,
    trace: Annotated[bool, typer.Option(help="Also estimate the Hessian trace (Hutchinson).")] = True,
) -> None:
    """Top Hessian eigenvalues and trace of a saved checkpoint, with the optimizer's threshold."""
    from optbench import views
    from optbench.runner.run_dir import RunDir
    from optbench.tools.sharpness import checkpoint_spectrum

    saved_step, metrics = checkpoint_spectrum(RunDir(run_dir), step, k, trace)
    out.print(views.metrics_table(f"{run_dir} at step {saved_step}", metrics))


@app.command(name="list")
@user_errors
def list_plugins(
    what: Annotated[str, typer.Argument(help="optimizers, tasks, schedules or loggers")] = "optimizers",
) -> None:
    """List the optimizers or tasks (or schedules, loggers) with their key settings."""
    from optbench import views
    from optbench.catalog import GROUPS, entries

    if what not in GROUPS:
        raise OptbenchError(f"cannot list {what!r}; accepted: {', '.join(GROUPS)}")
    rows = [[entry.name, entry.description, entry.settings] for entry in entries(GROUPS[what])]
    out.print(views.listing_table(what, ["name", "description", "key settings"], rows))


def _runs_table(root: Path, title: str) -> list[Any]:
    from optbench import views
    from optbench.contract import RunStatus
    from optbench.sweeps.collect import find_runs

    records = find_runs(root)
    out.print(views.records_table(records, root, f"{title}: {len(records)} run(s)"))
    for r in records:
        if r.status == RunStatus.FAILED:
            err.print(f"[red]failed[/] {r.path}: {escape(str(r.reason))}", highlight=False, soft_wrap=True)
    return records


def _directory(directory: Path, what: str) -> Path:
    if not directory.is_dir():
        raise OptbenchError(f"{directory} is not a directory; give the folder that holds {what}")
    return directory


@app.command()
@user_errors
def runs(
    directory: Annotated[Path, typer.Argument(help="A sweep dir, or any folder holding run dirs.")] = Path("runs"),
    group: Annotated[bool, typer.Option("--group", "-g", help="One row per config: final metrics as mean ± 95% CI over seeds.")] = False,
) -> None:
    """Table of the runs under DIRECTORY: task, optimizer, seed, status, steps, final loss, wall time."""
    _directory(directory, "run dirs")
    if group:
        from optbench import views
        from optbench.sweeps.collect import find_runs

        out.print(views.groups_table(directory, find_runs(directory)))
    else:
        _runs_table(directory, title=str(directory))


sweep_app = typer.Typer(help="Follow, stop and collect sweeps: [bold]optbench sweep status DIR[/], [bold]optbench sweep cancel DIR[/], [bold]optbench sweep collect DIR[/].",
                        no_args_is_help=True)
app.add_typer(sweep_app, name="sweep")


def _sweep(directory: Path) -> Any:
    from optbench.sweeps.status import sweep_status

    status = sweep_status(_directory(directory, "a sweep"))
    if status is None:
        raise OptbenchError(f"{directory} is not a sweep dir (no manifest.json); "
                            "give the dir `optbench run -m` printed, or use `optbench runs`")
    return status


@sweep_app.command()
@user_errors
def status(
    directory: Annotated[Path, typer.Argument(help="The sweep dir.")],
    wait: Annotated[bool, typer.Option(help="Wait until no job is queued or running.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between checks with --wait.")] = 5.0,
) -> None:
    """Each job of a sweep: queued, running, completed, diverged, failed or interrupted, and why."""
    import time

    from optbench import views

    current = _sweep(directory)
    while wait and current.active:
        time.sleep(interval)
        current = _sweep(directory)
    m = current.manifest
    counts = ", ".join(f"{n} {state}" for state, n in current.counts().items())
    out.print(f"sweep {escape(str(directory))} ({m.launcher} launcher, {m.sweeper} sweeper, driver "
              f"{current.driver}): {len(current.records)}{'' if m.size is None else f' of {m.size}'} "
              f"job(s): {counts}", soft_wrap=True, highlight=False)
    out.print(views.records_table(current.records, directory, title="", reasons=True))


@sweep_app.command()
@user_errors
def cancel(
    directory: Annotated[Path, typer.Argument(help="The sweep dir.")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for its jobs to stop.")] = 120.0,
) -> None:
    """Stop a sweep: its driver and running jobs checkpoint after their step and stop (SLURM jobs
    are scancel-ed); running the sweep's command again resumes them."""
    import time

    from optbench import views
    from optbench.contract import RunStatus
    from optbench.sweeps.cancel import cancel as cancel_sweep

    current = _sweep(directory)
    done = cancel_sweep(directory, current.manifest)
    stopping = ([f"{len(done.processes)} process(es) on this host"] if done.processes else []) + \
        ([f"SLURM job(s) {', '.join(done.slurm_jobs)}"] if done.slurm_jobs else [])
    out.print(f"stopping {' and '.join(stopping) or 'nothing: no job of this sweep runs here'}",
              highlight=False)
    deadline = time.monotonic() + timeout
    while any(r.status == RunStatus.RUNNING for r in current.records) and time.monotonic() < deadline:
        time.sleep(0.5)
        current = _sweep(directory)
    out.print(views.records_table(current.records, directory, title="", reasons=True))


@sweep_app.command()
@user_errors
def collect(
    directory: Annotated[Path, typer.Argument(help="The sweep dir.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where to write results.csv and results.parquet (default: the sweep dir).")] = None,
) -> None:
    """One row per job (config choices, status, final metrics) from the run dirs, as CSV and Parquet."""
    from optbench.sweeps.collect import results_frame

    frame = results_frame(_sweep(directory).records)
    target = out_dir or directory
    target.mkdir(parents=True, exist_ok=True)
    frame.to_csv(target / "results.csv", index=False)
    frame.to_parquet(target / "results.parquet", index=False)
    out.print(f"{len(frame)} row(s), {len(frame.columns)} column(s): {escape(str(target / 'results.csv'))}, "
              f"{escape(str(target / 'results.parquet'))}", highlight=False, soft_wrap=True)


def _seeds(option: str, text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise OptbenchError(f"{option} {text}: give seeds as integers separated by commas, e.g. 0,1,2") from None


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@user_errors
def tune(
    overrides: Annotated[list[str] | None, typer.Argument(help="Overrides for every run, e.g. [bold]task=logreg train.steps=200 hydra/launcher=parallel[/].", show_default=False)] = None,
    optimizers: Annotated[str | None, typer.Option(help="The optimizers to tune, comma-separated \\[default: the suite's].", show_default=False)] = None,
    protocol: Annotated[str | None, typer.Option(help="grid, quasirandom, coordinate or optuna \\[default: the suite's, else quasirandom].", show_default=False)] = None,
    budget: Annotated[int | None, typer.Option(help="Trials per optimizer and task; 1: the config's defaults \\[default: the suite's, else 8].", show_default=False)] = None,
    metric: Annotated[str | None, typer.Option(help="The final metric trials are selected on \\[default: the suite's, else eval/loss].", show_default=False)] = None,
    mode: Annotated[str | None, typer.Option(help="min or max: which way it improves \\[default: the suite's, else min].", show_default=False)] = None,
    seeds: Annotated[str | None, typer.Option(help="Tuning seeds: a trial's score is its mean over them \\[default: 0].", show_default=False)] = None,
    final_seeds: Annotated[str | None, typer.Option(help="Seeds the winner runs at for the report \\[default: 0,1,2].", show_default=False)] = None,
    sampler_seed: Annotated[int, typer.Option(help="Seed of quasirandom's Halton scrambling and Optuna's sampler.")] = 0,
    suite: Annotated[str | None, typer.Option(help="A suite of tasks: configs/suite/NAME.yaml (cpu, paper) or a .yaml path.", show_default=False)] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where to write tune.json, trials.csv and the sweeps \\[default: runs/tune/SUITE_OR_TASK].", show_default=False)] = None,
) -> None:
    """Tune every optimizer with the same budget of trials on each task, re-run each winner at the
    final seeds and freeze it as a preset ([bold]optbench run tuned=TASK/OPTIMIZER[/]).

    Every run goes through the run store: re-running the command recomputes nothing and resumes
    a killed tune. Exits 1 when some optimizer has no completed trial.

    [dim]optbench tune task=logreg --optimizers sgd,adamw --metric eval/suboptimality --budget 8[/]
    [dim]optbench tune --suite cpu hydra/launcher=parallel[/]
    """
    from optbench import views
    from optbench.sweeps.tune import tune as run_tune
    from optbench.sweeps.tune_plan import TuneOptions

    options = TuneOptions(
        overrides=list(overrides or []), optimizers=optimizers.split(",") if optimizers else None,
        protocol=protocol, budget=budget, metric=metric, mode=mode, seeds=_seeds("--seeds", seeds),
        final_seeds=_seeds("--final-seeds", final_seeds), sampler_seed=sampler_seed, suite=suite, out=out_dir)
    record, where = run_tune(options)
    for name, tuning in record.tasks.items():
        out.print(views.tune_table(name, tuning))
    out.print(f"wrote {escape(str(where / 'tune.json'))}, {escape(str(where / 'trials.csv'))}",
              highlight=False, soft_wrap=True)
    if any(entry.winner is None for tuning in record.tasks.values() for entry in tuning.optimizers.values()):
        raise typer.Exit(1)


class Scale(str, Enum):
    smoke = "smoke"
    paper = "paper"


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@user_errors
def figure(
    name: Annotated[str | None, typer.Argument(help="The figure (see --list).", show_default=False)] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="Extra overrides for its sweep, e.g. hydra/launcher=parallel.", show_default=False)] = None,
    scale: Annotated[Scale, typer.Option(help="smoke: minutes on a laptop CPU; paper: the paper's setting (GPUs).")] = Scale.smoke,
    from_dir: Annotated[Path | None, typer.Option("--from", help="Draw from this sweep dir instead of running the figure's sweep.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where to write NAME.png, .pdf, .csv and verdict.json \\[default: figures/NAME].", show_default=False)] = None,
    list_figures: Annotated[bool, typer.Option("--list", help="List the figures with their paper and claim.")] = False,
) -> None:
    """Regenerate a paper figure: run (or reuse) its sweep, draw it, and say whether the claim held.

    [dim]optbench figure eos[/]
    [dim]optbench figure swan-vs-adam --scale paper hydra/launcher=slurm hydra.launcher.partition=gpu[/]
    """
    from optbench import views
    from optbench.figures import preset

    if list_figures or name is None:
        found = [preset.load(figure_name) for figure_name in preset.names()]
        rows = [[figure.name, figure.paper, figure.claim] for figure in found]
        out.print(views.listing_table("figures", ["name", "paper", "claim"], rows))
        return
    if from_dir is not None and not from_dir.is_dir():
        raise OptbenchError(f"--from {from_dir} is not a directory; give a sweep dir (one with manifest.json)")
    from optbench.figures.make import make

    made = make(name, scale.value, out_dir, from_dir, list(overrides or []))
    out.print("\n".join(escape(line) for line in made.verdict.lines), highlight=False)
    state = "[bold green]held[/]" if made.verdict.held else "[bold red]did not hold[/]"
    out.print(f"verdict at --scale {scale.value}: {state} (the checks above; the paper's claim: "
              f"{escape(preset.load(name).claim)})", highlight=False)
    out.print("wrote " + ", ".join(escape(str(f)) for f in made.files), highlight=False, soft_wrap=True)


@app.command()
@user_errors
def compare(
    directories: Annotated[list[Path], typer.Argument(help="Tune dirs (tune.json), sweep dirs or folders of run dirs.", show_default=False)],
    baseline: Annotated[str, typer.Option(help="The optimizer every other is compared with.")] = "adamw",
    metric: Annotated[str | None, typer.Option(help="The final metric compared \\[default: a tune dir's, else eval/loss].", show_default=False)] = None,
    mode: Annotated[str | None, typer.Option(help="min or max: which way the metric improves \\[default: a tune dir's, else min].", show_default=False)] = None,
    target: Annotated[float | None, typer.Option(help="The value time to target is measured to \\[default: a tune dir's, else the baseline's final mean].", show_default=False)] = None,
    clock: Annotated[str, typer.Option(help="The performance profiles' time: seconds, steps or work.")] = "seconds",
    within: Annotated[float, typer.Option(help="Learning-rate sensitivity: trials within this fraction of the best count as near it.")] = 0.05,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where to write the tables, figures and report.html \\[default: FIRST_DIR/compare].", show_default=False)] = None,
) -> None:
    """Compare optimizers against a baseline, per task and across tasks: final metric ± 95% CI,
    time to target, speedups (work ratio and a fitted data-equivalent), Welch's t-test, performance
    profiles and learning-rate sensitivity; CSV, Parquet, figures and one self-contained report.html.

    [dim]optbench compare runs/tune/cpu-suite --baseline adamw[/]
    [dim]optbench compare runs/multirun/2025-01-01/10-00-00 --metric eval/loss --clock steps[/]
    """
    from optbench import views
    from optbench.figures.report import publish
    from optbench.sweeps.compare import Options
    from optbench.sweeps.compare import compare as compare_runs

    options = Options(baseline, metric, mode, target, clock, within)
    comparison = compare_runs(directories, options)
    target_dir = out_dir or directories[0] / "compare"
    files = publish(comparison, target_dir, directories)
    for table in views.compare_tables(comparison):
        out.print(table)
    for note in comparison.notes:
        out.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    out.print(f"wrote {len(files)} files in {escape(str(target_dir))}; open {escape(str(target_dir / 'report.html'))}",
              highlight=False, soft_wrap=True)


if __name__ == "__main__":
    app()
