"""The tables and lines the command line prints, built from what the other layers return."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from optbench.contract import RunStatus
from optbench.loggers.console import format_value
from optbench.sweeps.collect import RunRecord, choices, distinguishing

STATUS_STYLE = {RunStatus.COMPLETED: "green", RunStatus.DIVERGED: "yellow", RunStatus.FAILED: "red",
                RunStatus.RUNNING: "cyan", RunStatus.INTERRUPTED: "magenta", RunStatus.QUEUED: "dim"}


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def records_table(records: list[RunRecord], root: Path, title: str, reasons: bool = False) -> Table:
    """Runs as rows; a sweep's jobs by number and overrides, other runs by dir, task, optimizer."""
    sweep = any(r.job is not None for r in records)
    if sweep:  # name each job by what sets it apart
        varied = distinguishing([choices(r) for r in records])
    table = Table(title=title or None, title_justify="left")
    left = ["job", "overrides"] if sweep else ["run dir", "task", "optimizer", "seed"]
    right = ["status", "steps", "train/loss", "wall time", *(["reason"] if reasons else [])]
    for column in left + right:
        table.add_column(column, overflow="fold" if column in ("run dir", "overrides", "reason") else "ellipsis",
                         justify="right" if column in ("job", "seed", "steps", "train/loss", "wall time") else "left")
    for r in records:
        if sweep:
            cells = [str(r.job), escape(" ".join(o for o in r.overrides if o.lstrip("+~").split("=", 1)[0] in varied))]
        else:
            where = escape(str(r.path.relative_to(root))) if r.path != root else "."
            cells = [where, r.task or "-", r.optimizer or "-", "-" if r.seed is None else str(r.seed)]
        cells += [f"[{STATUS_STYLE[r.status]}]{r.status}[/]",
                  "-" if r.steps is None else str(r.steps),
                  "-" if r.train_loss is None else format_value(r.train_loss),
                  "-" if r.wall_seconds is None else duration(r.wall_seconds)]
        if reasons:
            cells.append(escape(r.reason or ""))
        table.add_row(*cells)
    return table


def groups_table(root: Path, records: list[RunRecord]) -> Table:
    """One row per config: each final metric's mean ± 95% CI over its seeds."""
    from optbench.sweeps.aggregate import group_by_config, metrics_present

    groups = group_by_config(records)
    metrics = metrics_present(records)
    table = Table(title=f"{root}: {len(groups)} config(s), mean ± 95% CI over seeds", title_justify="left")
    labels = list(groups[0].label) if groups else []
    for column in [*labels, str(RunStatus.COMPLETED), *metrics]:
        table.add_column(column, justify="left" if column in labels else "right")
    for group in groups:
        cells = [escape(format_value(group.label[k])) for k in labels]
        cells.append(f"{len(group.completed)}/{len(group.records)}")
        for metric in metrics:
            e = group.estimate(metric)
            cells.append("-" if e is None else f"{e.mean:.4g}" + ("" if e.half_width is None else f" ± {e.half_width:.2g}"))
        table.add_row(*cells)
    return table


def best_trial(sweep_dir: Path) -> str | None:
    """What Hydra's Optuna sweeper found, when this sweep used it."""
    import yaml

    results = sweep_dir / "optimization_results.yaml"
    if not results.exists():
        return None
    best = yaml.safe_load(results.read_text())
    if "best_params" not in best:
        return None
    params = " ".join(f"{k}={v}" for k, v in best["best_params"].items())
    return f"best trial: {escape(params)} -> {best['best_value']:.6g}"


def memory_table(task: str, optimizer: str, precision: str, result: Any, paper: Any) -> Table:
    """Bytes of weights, gradients and states (a :class:`optbench.tools.memory.MemoryEstimate`),
    beside the published figure when there is one."""
    table = Table(title=f"{task} / {optimizer}, {precision} ({result.parameters:,} parameters)",
                  title_justify="left")
    table.add_column("memory")
    table.add_column("bytes", justify="right")
    table.add_column("GB (10⁹)", justify="right")
    rows = [("weights", result.weights), ("gradients", result.gradients),
            ("optimizer states", result.optimizer_states), ("total", result.total),
            ("weights + states", result.weights + result.optimizer_states)]
    for name, count in rows:
        table.add_row(name, f"{count:,}", f"{count / 1e9:.3f}")
    if paper is not None:
        table.add_row(f"{paper.method}, published", "", f"{paper.gigabytes:.2f}", style="dim")
        table.caption = f"published: {paper.source}"
    return table


def metrics_table(title: str, metrics: dict[str, float]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key, value in metrics.items():
        table.add_row(key, format_value(value))
    return table


def listing_table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    """A listing whose first column names things (plugins, figures)."""
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, style="bold cyan" if i == 0 else ("dim" if column == "key settings" else None))
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    return table


def compare_table(comparison: Any) -> Table:
    """``optbench compare``'s main numbers per task and optimizer (a
    :class:`optbench.sweeps.compare.Comparison`); every number as compare.csv writes it."""
    from optbench.sweeps.compare import CLOCKS, cell

    clock = comparison.profile.clock

    def with_note(row: dict[str, Any]) -> str:
        shown, note = cell(row["data_speedup"]), row["data_speedup_note"]
        return f"{shown} ({note})" if note and shown != note else shown

    columns = {
        "task": lambda row: cell(row["task"]),
        "optimizer": lambda row: cell(row["optimizer"]),
        "final": lambda row: cell(row["final_mean"]),
        "± 95% CI": lambda row: cell(row["final_ci95"]),
        "reached": lambda row: f"{row['reached']}/{row['seeds']}" if isinstance(row["reached"], int) else cell(row["reached"]),
        f"{clock} to target": lambda row: cell(row[CLOCKS[clock]]),
        "work speedup": lambda row: cell(row["work_speedup"]),
        "data speedup": with_note,
        "Welch p": lambda row: cell(row["welch_p"]),
        "seeds for p<0.01": lambda row: cell(row["seeds_needed_p01"]),
        "lr width (decades)": lambda row: cell(row["lr_width_decades"]),
        "profile ratio": lambda row: cell(row["profile_ratio"]),
    }
    table = Table(title=f"against {comparison.options.baseline}", title_justify="left")
    for title in columns:
        table.add_column(title, justify="left" if title in ("task", "optimizer") else "right")
    for row in comparison.rows:
        table.add_row(*(escape(show(row)) for show in columns.values()), style="bold" if row["baseline"] else None)
    scores = ", ".join(f"{name} {score:.3f}" for name, score in comparison.profile.scores.items())
    table.caption = f"performance-profile scores ({clock}, r_max 4): {scores}"
    return table


def tune_table(task: str, tuning: Any) -> Table:
    """One task of ``optbench tune`` (a :class:`optbench.sweeps.tune_record.TaskTuning`): per
    optimizer its trials, how many failed, the winner's score and hyperparameters, its preset."""
    table = Table(title=f"{task}: {tuning.metric} ({tuning.mode}, final value, mean over the tuning seeds)",
                  title_justify="left")
    for column in ("optimizer", "trials", "failed", "best", "winner", "preset"):
        table.add_column(column, justify="right" if column in ("trials", "failed", "best") else "left",
                         overflow="fold")
    for optimizer, entry in tuning.optimizers.items():
        won = entry.trials[entry.winner] if entry.winner is not None else None
        table.add_row(optimizer, str(len(entry.trials)), str(sum(t.failed for t in entry.trials)),
                      "-" if won is None else f"{won.score:.6g}",
                      "[red]every trial failed[/]" if won is None else escape(" ".join(won.overrides) or "(defaults)"),
                      escape(entry.preset or "-"))
    return table
