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


def _short(value: Any) -> str:
    """A cell for the terminal: a number at 4 significant digits, a number that could not be
    computed as the head of its reason ("n/a", "L <= c"); compare.csv keeps both in full."""
    from optbench.sweeps.compare import NA, cell

    if isinstance(value, NA):
        return value.split(":")[0]
    return f"{value:.4g}" if isinstance(value, float) else cell(value)


def compare_tables(comparison: Any) -> list[Table]:
    """``optbench compare``'s main numbers (a :class:`optbench.sweeps.compare.Comparison`), as two
    tables narrow enough for a terminal: each optimizer's results, then its standing against the
    baseline. compare.csv and report.html hold every column at full precision."""
    from optbench.sweeps.compare import CLOCKS

    clock = comparison.profile.clock

    def final(row: dict[str, Any]) -> str:
        spread = row["final_ci95"]
        return _short(row["final_mean"]) + (f" ± {_short(spread)}" if isinstance(spread, float) else "")

    def reached(row: dict[str, Any]) -> str:
        return f"{row['reached']}/{row['seeds']}" if isinstance(row["reached"], int) else _short(row["reached"])

    def data_speedup(row: dict[str, Any]) -> str:
        shown, note = _short(row["data_speedup"]), row["data_speedup_note"]
        return f"{shown}*" if note == "extrapolated" else shown

    results = {
        "final (± 95% CI)": final,
        "reached target": reached,
        f"{clock} to target": lambda row: _short(row[CLOCKS[clock]]),
        "profile ratio": lambda row: _short(row["profile_ratio"]),
    }
    against = {
        "work speedup": lambda row: _short(row["work_speedup"]),
        "data speedup": data_speedup,
        "Welch p": lambda row: _short(row["welch_p"]),
        "seeds for p<0.01": lambda row: _short(row["seeds_needed_p01"]),
        "lr width (decades)": lambda row: _short(row["lr_width_decades"]),
    }
    tables = []
    for title, columns in ((f"results ({clock} to target)", results),
                           (f"against {comparison.options.baseline}", against)):
        table = Table(title=title, title_justify="left")
        table.add_column("task", no_wrap=True)
        table.add_column("optimizer", no_wrap=True)
        for name in columns:
            table.add_column(name, justify="right", overflow="fold")
        for row in comparison.rows:
            table.add_row(escape(str(row["task"])), escape(str(row["optimizer"])),
                          *(escape(show(row)) for show in columns.values()),
                          style="bold" if row["baseline"] else None)
        tables.append(table)
    scores = ", ".join(f"{name} {score:.3f}" for name, score in comparison.profile.scores.items())
    tables[0].caption = f"performance-profile scores ({clock}, r_max 4): {scores}"
    tables[1].caption = ("* extrapolated beyond the baseline's fitted range; "
                         "why a number is n/a: compare.csv and report.html")
    return tables


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
