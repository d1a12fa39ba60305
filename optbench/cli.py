"""The `optbench` command line. Thin: it parses, delegates and prints; no training logic here.

Heavy modules (torch, Hydra, W&B) are imported inside the commands that need them, so that
`optbench --help` and `optbench list` stay fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

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


def _split_hydra_flags(args: list[str]) -> tuple[list[str], list[str]]:
    """Overrides (key=value) and Hydra's own flags (--cfg job, --info, ...), which pass through."""
    flags = [a for a in args if a.startswith("-")]
    return [a for a in args if not a.startswith("-")], flags


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@user_errors
def run(
    overrides: Annotated[Optional[list[str]], typer.Argument(help=OVERRIDES_HELP, show_default=False)] = None,
    multirun: Annotated[bool, typer.Option("--multirun", "-m", help="Run a sweep: comma-separated values, range(...), or a sweeper.")] = False,
) -> None:
    """Run one job, or a sweep with [bold]-m[/]. Overrides go to Hydra verbatim.

    [dim]optbench run task=logreg optimizer=adam optimizer.lr=0.01[/]
    [dim]optbench run -m optimizer=sgd,adam optimizer.lr=0.1,0.01 seed=0,1,2[/]
    """
    from optbench import launch

    args = list(overrides or [])
    plain, flags = _split_hydra_flags(args)
    if flags:  # Hydra's own flags (--cfg, --info, ...): Hydra handles everything
        launch.launch([*(["--multirun"] if multirun else []), *args])
        return
    hydra_args, output_dir = launch.prepare(plain, multirun)
    launch.launch([*(["--multirun"] if multirun else []), *hydra_args])
    if multirun:
        records = _runs_table(Path(output_dir), title=f"sweep {output_dir}")
        if any(r.status == "failed" for r in records):
            raise typer.Exit(1)


@app.command()
@user_errors
def show(
    overrides: Annotated[Optional[list[str]], typer.Argument(help=OVERRIDES_HELP, show_default=False)] = None,
    resolve: Annotated[bool, typer.Option(help="Resolve ${...} interpolations.")] = False,
) -> None:
    """Print the composed config of a run as YAML, without running it."""
    from omegaconf import OmegaConf

    from optbench.launch import compose_checked

    cfg = compose_checked(list(overrides or []))
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    print(OmegaConf.to_yaml(cfg, resolve=resolve), end="")


@app.command()
@user_errors
def memory(
    overrides: Annotated[Optional[list[str]], typer.Argument(help=OVERRIDES_HELP, show_default=False)] = None,
) -> None:
    """Bytes of weights, gradients and optimizer states for a task and optimizer, computed on the
    meta device (no allocation), beside the GaLore paper's figures where it has them.

    [dim]optbench memory task=llama1b optimizer=galore precision=bf16[/]
    """
    from optbench.launch import compose_checked
    from optbench.runner.memory_estimate import estimate, published

    cfg = compose_checked(list(overrides or []))
    choices = cfg.hydra.runtime.choices
    result = estimate(cfg)
    table = Table(title=f"{choices.task} / {choices.optimizer}, {cfg.precision.value} "
                        f"({result.parameters:,} parameters)", title_justify="left")
    table.add_column("memory")
    table.add_column("bytes", justify="right")
    table.add_column("GB (10⁹)", justify="right")
    rows = [("weights", result.weights), ("gradients", result.gradients),
            ("optimizer states", result.optimizer_states), ("total", result.total),
            ("weights + states", result.weights + result.optimizer_states)]
    for name, count in rows:
        table.add_row(name, f"{count:,}", f"{count / 1e9:.3f}")
    paper = published(choices.task, choices.optimizer)
    if paper is not None:
        table.add_row(f"{paper.method}, published", "", f"{paper.gigabytes:.2f}", style="dim")
        table.caption = f"published: {paper.source}"
    out.print(table)


@app.command()
@user_errors
def sharpness(
    run_dir: Annotated[Path, typer.Argument(help="A run dir holding a checkpoint.")],
    step: Annotated[Optional[int], typer.Option(help="A kept checkpoint (train.keep_checkpoints=true); default: the latest.")] = None,
    k: Annotated[int, typer.Option(help="How many top eigenvalues.")] = 3,
    trace: Annotated[bool, typer.Option(help="Also estimate the Hessian trace (Hutchinson).")] = True,
) -> None:
    """Top Hessian eigenvalues and trace of a saved checkpoint, with the optimizer's threshold."""
    from optbench.diagnostics.saved import checkpoint_spectrum
    from optbench.runner.run_dir import RunDir
    from optbench.runner.sinks.console import format_value

    saved_step, metrics = checkpoint_spectrum(RunDir(run_dir), step, k, trace)
    table = Table(title=f"{run_dir} at step {saved_step}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key, value in metrics.items():
        table.add_row(key, format_value(value))
    out.print(table)


@app.command(name="list")
@user_errors
def list_plugins(
    what: Annotated[str, typer.Argument(help="optimizers, tasks, schedules or loggers")] = "optimizers",
) -> None:
    """List the optimizers or tasks (or schedules, loggers) with their key settings."""
    from optbench.catalog import GROUPS, entries

    if what not in GROUPS:
        raise OptbenchError(f"cannot list {what!r}; accepted: {', '.join(GROUPS)}")
    table = Table(title=what, title_justify="left")
    table.add_column("name", style="bold cyan")
    table.add_column("description")
    table.add_column("key settings", style="dim")
    for entry in entries(GROUPS[what]):
        table.add_row(entry.name, escape(entry.description), escape(entry.settings))
    out.print(table)


_STATUS_STYLE = {"completed": "green", "diverged": "yellow", "failed": "red",
                 "running": "cyan", "interrupted": "magenta"}


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _runs_table(root: Path, title: str) -> list[Any]:
    from optbench.runner.sinks.console import format_value
    from optbench.sweeps.collect import find_runs

    records = find_runs(root)
    table = Table(title=f"{title}: {len(records)} run(s)", title_justify="left")
    table.add_column("run dir", overflow="fold")
    for column in ("task", "optimizer", "seed", "status", "steps", "train/loss", "wall time"):
        table.add_column(column, no_wrap=True,
                         justify="right" if column in ("seed", "steps", "train/loss", "wall time") else "left")
    for r in records:
        style = _STATUS_STYLE.get(r.status, "")
        table.add_row(
            escape(str(r.path.relative_to(root))) if r.path != root else ".", r.task or "-",
            r.optimizer or "-",
            "-" if r.seed is None else str(r.seed), f"[{style}]{r.status}[/]" if style else r.status,
            "-" if r.steps is None else str(r.steps),
            "-" if r.train_loss is None else format_value(r.train_loss),
            "-" if r.wall_seconds is None else _duration(r.wall_seconds),
        )
    out.print(table)
    for r in records:
        if r.status == "failed":
            err.print(f"[red]failed[/] {r.path}: {escape(str(r.reason))}", highlight=False,
                      soft_wrap=True)
    return records


@app.command()
@user_errors
def runs(
    directory: Annotated[Path, typer.Argument(help="Where to look for run dirs.")] = Path("runs"),
) -> None:
    """Table of the runs under DIRECTORY: task, optimizer, seed, status, steps, final loss, wall time."""
    if not directory.is_dir():
        raise OptbenchError(f"{directory} is not a directory; give the folder that holds run dirs")
    _runs_table(directory, title=str(directory))


if __name__ == "__main__":
    app()
