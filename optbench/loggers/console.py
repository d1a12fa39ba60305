"""The console: a rich progress bar while training, and a summary table at the end."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from optbench.contract import LR, TRAIN_LOSS, Summary

console = Console(stderr=True)

#: the bar's redraw interval: rich's own rate (refresh_per_second=10). A redraw costs about half a
#: millisecond in a terminal, more than a step of a small task logging every step.
REDRAW_SECONDS = 0.1


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return escape(str(value))


def summary_table(summary: Summary) -> Table:
    table = Table(title=f"run {summary.status}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key in ("status", "reason", "steps", "wall_seconds"):
        if getattr(summary, key) is not None:
            table.add_row(key, format_value(getattr(summary, key)))
    for key, value in sorted(summary.final.items()):
        table.add_row(key, format_value(value))
    table.add_row("run dir", str(summary.run_dir or ""))
    return table


class ConsoleSink:
    def __init__(self, total_steps: int, start_step: int, title: str, compact: bool = False) -> None:
        """``compact``: end with one line instead of the summary table (jobs of a sweep)."""
        self._compact = compact
        self._progress = Progress(
            TextColumn(f"[bold]{title}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}"),
            TimeRemainingColumn(),
            console=console,
            auto_refresh=False,  # no redraw thread competing with training: log() redraws
        )
        self._task = self._progress.add_task("train", total=total_steps, completed=start_step,
                                             loss="-", lr="-")
        self._progress.start()
        self._drawn = time.monotonic()

    def log(self, step: int, metrics: dict[str, float]) -> None:
        fields = {}
        if TRAIN_LOSS in metrics:
            fields["loss"] = format_value(metrics[TRAIN_LOSS])
        if LR in metrics:
            fields["lr"] = format_value(metrics[LR])
        self._progress.update(self._task, completed=step, **fields)
        now = time.monotonic()
        if now - self._drawn >= REDRAW_SECONDS:  # stop() draws the last state
            self._progress.refresh()
            self._drawn = now

    def close(self, summary: Summary) -> None:
        self._progress.stop()
        if not self._compact:
            console.print(summary_table(summary))
            return
        loss = summary.final.get(TRAIN_LOSS)
        console.print(f"{escape(str(summary.run_dir))}: {summary.status}"
                      + (f", train/loss {format_value(loss)}" if loss is not None else ""),
                      highlight=False, soft_wrap=True)
