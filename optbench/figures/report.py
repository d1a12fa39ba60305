"""``optbench compare``'s outputs: the tables (CSV, Parquet), the figures (PNG, PDF) and
report.html, one self-contained file (figures as base64 data URIs, CSS inline, no external URL)
that opens from disk without a server. Its tables are the CSVs' cells, formatted once
(:func:`optbench.sweeps.compare.cell`), so the report and the CSVs show the same numbers."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from optbench.figures.compare import draw_all
from optbench.sweeps.compare import REPORTED, Comparison, shown, write_tables

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 110em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; }
figure { margin: 1em 0; } img { max-width: min(100%, 60em); }
code { background: #f4f4f4; padding: 0 0.2em; }
"""

# how each number is computed, in the report's words (the modules' docstrings give the sources);
# one item per paragraph
METHOD = """
final_mean ± final_ci95: the mean of the final metric over completed seeds, ± Student's
t(0.975, n−1)·s/√n.

reached: the seeds whose run met the target; steps/work/seconds_to_target: their mean over those
seeds, linear between the evaluations around the crossing.

work_speedup: W_base(V)/W_opt(V), the work on each seed-mean curve to reach V, the baseline's final
mean.

data_speedup (Wen et al. 2025): L(D) = a·D^(−b) + c fitted to the baseline's seed-mean curve
(scipy.optimize.curve_fit; R², RMSE on the fitted points); D_base(L) = ((L − c)/a)^(−1/b) at the
optimizer's final mean L, divided by the data it used. Flagged when D_base(L) lies outside the
fitted range, and not finite when L ≤ c.

welch_t, welch_p: scipy.stats.ttest_ind(optimizer, baseline, equal_var=False) on final values;
seeds_needed_p01: n = ⌈2(z₀.₉₉₅ + z₀.₈)²σ²/δ²⌉ seeds per arm for p < 0.01 with power 0.8 (normal
approximation; σ² the mean of the two sample variances, δ the difference of means).

Performance profiles (Dahl et al. 2023): r = t/t_fastest per task, with t the mean time to target
and r = ∞ when fewer than half the seeds met it; ρ(τ) = the fraction of tasks with r ≤ τ;
score = (1/3)∫₁⁴ρ(τ)dτ, computed exactly.

lr_width_decades: log10(lr_max/lr_min) over the trials within --within × |best| of the best trial.
"""


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>none</p>"
    return '<div class="scroll">' + shown(rows).to_html(index=False, escape=True, border=0) + "</div>"


def _image(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def render(comparison: Comparison, figures: dict[str, list[Path]], sources: list[Path]) -> str:
    """report.html's text."""
    options = comparison.options
    profile = comparison.profile
    scores = [{"optimizer": s, "clock": profile.clock, "score": profile.scores[s],
               **{f"ratio {task}": r for task, r in zip(profile.tasks, profile.ratios[s])}}
              for s in profile.ratios]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>optbench compare: baseline {html.escape(options.baseline)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>optbench compare: every optimizer against {html.escape(options.baseline)}</h1>",
        "<p>From " + ", ".join(f"<code>{html.escape(str(s))}</code>" for s in sources)
        + f"; clock {html.escape(profile.clock)}, within {options.within:g} of the best.</p>",
        "<ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in [REPORTED, *comparison.notes]) + "</ul>",
        "<h2>Per task and optimizer</h2>", _table(comparison.rows),
        "<h2>Curves</h2>", _image(figures["curves"][0], "mean curves over seeds, the baseline's fit dashed"),
        "<h2>Performance profiles</h2>", _table(scores),
        _image(figures["profiles"][0], "performance profiles"),
        "<h2>Learning-rate sensitivity</h2>",
        _image(figures["sensitivity"][0], "final metric against learning rate; failed trials marked ×"),
        _table(comparison.sensitivity),
        "<h2>How the numbers are computed</h2>",
        "<ul>" + "".join(f"<li>{html.escape(' '.join(item.split()))}</li>" for item in METHOD.strip().split("\n\n"))
        + "</ul>",
        "</body></html>",
    ]
    return "\n".join(parts)


def publish(comparison: Comparison, out_dir: Path, sources: list[Path]) -> list[Path]:
    """Every output of ``optbench compare`` in ``out_dir``; the paths written."""
    tables = write_tables(comparison, out_dir)
    figures = draw_all(comparison, out_dir)
    report = out_dir / "report.html"
    report.write_text(render(comparison, figures, sources), encoding="utf-8")
    return [*tables, *(p for paths in figures.values() for p in paths), report]
