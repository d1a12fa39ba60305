"""``swan_vs_adam``: eval perplexity against training tokens for AdamW, SWAN, GaLore and Muon on a
LLaMA task (Ma et al., SWAN, ICML 2025: at 350M and 1.3B SWAN reaches Adam's eval perplexity with
about half the tokens).

The verdict gives, for every optimizer, the tokens it needs to reach the baseline's (AdamW's)
final eval perplexity and their ratio to the baseline's own. "Reaching" is read off the eval
curve: the first eval whose loss is at or below the target, interpolated linearly in loss
(log perplexity) against tokens from the eval before it; "not reached" if no eval gets there.
The baseline is measured the same way, so a baseline whose curve dips below its final value
before the end counts the earlier crossing.

What must hold (settings, from the preset's ``params``):

- ``learned_fraction``: the baseline and SWAN both learn: each closes at least this fraction of
  the gap between its initial eval loss and the optimum (``eval/optimal_loss`` where the task
  knows it, else 0);
- ``max_token_ratio`` (null: not judged): SWAN needs at most this fraction of the baseline's
  tokens. The token ratio is reported either way.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optbench.contract import RunStatus
from optbench.figures.curves import setting
from optbench.figures.preset import FigurePreset
from optbench.figures.style import PALETTE, new_figure
from optbench.figures.verdict import Analysis, Verdict
from optbench.loggers.jsonl import read_metrics
from optbench.sweeps.collect import RunRecord, choices, distinguishing

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLUMNS = ("optimizer", "label", "lr", "step", "tokens", "eval_loss", "eval_ppl", "optimal_loss", "status")


def _number(value: Any) -> float:
    """A logged value as a float (metrics.jsonl writes NaN and inf as strings)."""
    return float(value) if value is not None else math.nan


def eval_curve(record: RunRecord) -> list[dict[str, float]]:
    """Every eval of the run as {step, tokens, eval_loss, eval_ppl, optimal_loss}.

    An eval logged without ``tokens`` (the one at step 0, or one off the log interval) gets them
    from the steps that have them: 0 at step 0, linear between logged steps, and beyond the last
    at its tokens per step.
    """
    rows = read_metrics(record.path / "metrics.jsonl")
    logged = sorted({(r["step"], r["tokens"]) for r in rows if "tokens" in r})
    anchors = [(0, 0.0), *[(s, float(t)) for s, t in logged if s > 0]]

    def tokens_at(step: int) -> float:
        for (s0, t0), (s1, t1) in itertools.pairwise(anchors):
            if s0 <= step <= s1:
                return t0 + (t1 - t0) * (step - s0) / (s1 - s0)
        s_last, t_last = anchors[-1]
        per_step = t_last / s_last if s_last else _nominal_tokens_per_step(record)
        return t_last + per_step * (step - s_last)

    curve = []
    for r in rows:
        if "eval/loss" not in r:
            continue
        loss = _number(r["eval/loss"])
        curve.append({"step": r["step"], "tokens": float(r["tokens"]) if "tokens" in r else tokens_at(r["step"]),
                      "eval_loss": loss,
                      "eval_ppl": _number(r.get("eval/ppl", math.exp(loss) if loss < 700 else math.inf)),
                      "optimal_loss": _number(r.get("eval/optimal_loss"))})
    return curve


def _nominal_tokens_per_step(record: RunRecord) -> float:
    """The targets of a step of full rows (``seq_len - 1`` each), as the task counts tokens."""
    seq_len, sequences = setting(record, "task.seq_len"), setting(record, "task.sequences_per_step")
    return float((seq_len - 1) * sequences) if seq_len and sequences else math.nan


def tokens_to_reach(curve: list[dict[str, float]], target_loss: float) -> float | None:
    """Tokens at which the eval loss first reaches ``target_loss`` (linear in loss between the
    two evals around the crossing); None if it never does."""
    before = None
    for point in curve:
        loss = point["eval_loss"]
        if math.isfinite(loss) and loss <= target_loss:
            if before is None or before["eval_loss"] <= loss or not math.isfinite(before["eval_loss"]):
                return point["tokens"]
            share = (before["eval_loss"] - target_loss) / (before["eval_loss"] - loss)
            return before["tokens"] + share * (point["tokens"] - before["tokens"])
        before = point
    return None


def learned(curve: list[dict[str, float]]) -> float | None:
    """The fraction of the gap from the initial eval loss to the optimum (0 where the task knows
    none) that the final eval closes; None without two finite evals."""
    finite = [p for p in curve if math.isfinite(p["eval_loss"])]
    if len(finite) < 2 or not math.isfinite(curve[-1]["eval_loss"]):  # none, or ended diverged
        return None
    first, last = finite[0]["eval_loss"], finite[-1]["eval_loss"]
    optimum = finite[-1]["optimal_loss"]
    floor = optimum if math.isfinite(optimum) else 0.0
    return (first - last) / (first - floor) if first > floor else None


def _labels(records: list[RunRecord]) -> dict[int, tuple[str, str]]:
    """(optimizer, label) per record index: the optimizer's name, plus the other settings that
    tell runs of the same optimizer apart (e.g. ``seed=1``), if any."""
    found: dict[int, tuple[str, str]] = {}
    picked = {i: choices(r) for i, r in enumerate(records)}
    for i, r in enumerate(records):
        optimizer = str(picked[i].get("optimizer") or r.optimizer or f"job {r.job}")
        same = [j for j in picked if str(picked[j].get("optimizer") or records[j].optimizer) == optimizer]
        extra = ""
        if len(same) > 1:
            keys = [k for k in distinguishing([picked[j] for j in same])
                    if k != "optimizer" and k in picked[i]]
            extra = " (" + ", ".join(f"{k}={picked[i][k]}" for k in keys) + ")" if keys else f" (job {r.job})"
        found[i] = (optimizer, optimizer + extra)
    return found


@dataclass
class EvalAnalysis(Analysis):
    """The eval curves, judged, and what :func:`draw` marks on them."""

    labels: list[str]  # one curve each, in the preset's order of optimizers
    curves: dict[str, list[dict[str, Any]]]  # per label, its evals by step (rows of ``data``)
    optimizers: list[str]  # the preset's order: each optimizer's colour
    baseline: str
    claimed: str
    target: float | None  # the baseline's final eval loss; None where it has none (finite)
    reached: dict[str, float | None]  # per label, the tokens at which it first reaches the target
    optimum: float | None  # the task's optimal eval loss, where it knows one
    title: str | None  # the task and its data source


def analyze(preset: FigurePreset, records: list, settings: dict[str, Any]) -> EvalAnalysis:
    import pandas as pd

    order = list(settings.get("optimizers", ["adamw", "swan", "galore", "muon"]))
    baseline, claimed = settings.get("baseline", "adamw"), settings.get("claimed", "swan")
    names = _labels(records)
    rows, skipped = [], []
    for i, record in enumerate(records):
        optimizer, label = names[i]
        if record.path is None or not (record.path / "metrics.jsonl").exists():
            skipped.append(f"{label}: no eval curve ({record.status})")
            continue
        lr = setting(record, "optimizer.lr")
        for point in eval_curve(record):
            rows.append({"optimizer": optimizer, "label": label, "lr": lr, **point, "status": record.status})
    data = pd.DataFrame(rows, columns=list(COLUMNS))

    def rank(label: str) -> tuple[int, str]:
        optimizer = data.loc[data["label"] == label, "optimizer"].iloc[0]
        return (order.index(optimizer) if optimizer in order else len(order), label)

    labels = sorted(data["label"].unique(), key=rank)
    curves = {label: data[data["label"] == label].sort_values("step").to_dict("records") for label in labels}

    base = next((label for label in labels if curves[label][0]["optimizer"] == baseline), None)
    target = None
    if base is not None and math.isfinite(curves[base][-1]["eval_loss"]):
        target = curves[base][-1]["eval_loss"]
    reached = ({label: tokens_to_reach(curves[label], target) for label in labels}
               if target is not None else {})
    optimum = data["optimal_loss"].dropna()
    title = None
    task = (choices(records[0]).get("task") or records[0].task) if records else None
    if task:
        source = setting(records[0], "task.data.source")
        title = f"{task}, {source} data" if source else str(task)
    verdict = judge(curves, labels, base, target, claimed, settings, skipped)
    return EvalAnalysis(data, verdict, labels, curves, order, baseline, claimed, target, reached,
                        None if optimum.empty else float(optimum.iloc[0]), title)


def judge(curves: dict[str, list[dict[str, float]]], labels: list[str], base: str | None,
          target: float | None, claimed: str, settings: dict[str, Any], skipped: list[str]) -> Verdict:
    fraction = float(settings.get("learned_fraction", 0.6))
    max_ratio = settings.get("max_token_ratio")
    lines, numbers = [], {"learned_fraction": fraction, "max_token_ratio": max_ratio, "optimizers": {}}
    if base is None or target is None:
        lines.append("no finite final eval perplexity for the baseline: nothing to compare against")
    base_tokens = tokens_to_reach(curves[base], target) if base is not None and target is not None else None
    if target is not None:
        numbers["target_ppl"] = math.exp(target)
        numbers["target_loss"] = target
        lines.append(f"target: {base}'s final eval ppl {math.exp(target):.4g} "
                     f"(loss {target:.4f}), first reached at {_tokens(base_tokens)} tokens")
    held = base is not None and target is not None
    found_claimed = False
    for label in labels:
        points = curves[label]
        optimizer = points[0]["optimizer"]
        share = learned(points)
        final = points[-1]
        reached = tokens_to_reach(points, target) if target is not None else None
        ratio = reached / base_tokens if reached is not None and base_tokens else None
        numbers["optimizers"][label] = {
            "optimizer": optimizer, "status": final["status"], "lr": final["lr"],
            "initial_loss": points[0]["eval_loss"], "final_loss": final["eval_loss"],
            "final_ppl": final["eval_ppl"], "tokens": final["tokens"],
            "optimal_loss": None if math.isnan(final["optimal_loss"]) else final["optimal_loss"],
            "learned": share, "learns": share is not None and share >= fraction,
            "tokens_to_target": reached, "token_ratio": ratio,
        }
        status = "" if final["status"] == RunStatus.COMPLETED else f" [{final['status']}]"
        learned_text = f"{share:.0%} of the gap to the optimum" if share is not None else "n/a"
        reach_text = (f"reaches the target at {_tokens(reached)} tokens, {ratio:.2f}× the baseline's"
                      if ratio is not None else "does not reach the target" if target is not None else "")
        lines.append(f"{label}{status}: eval ppl {points[0]['eval_ppl']:.4g} → {final['eval_ppl']:.4g} "
                     f"in {_tokens(final['tokens'])} tokens, closes {learned_text}; {reach_text}")
        if optimizer in (settings.get("baseline", "adamw"), claimed):
            ok = share is not None and share >= fraction
            held &= ok
            lines.append(f"  {optimizer} learns (closes ≥ {fraction:.0%}): {'yes' if ok else 'NO'}")
        if optimizer == claimed and not found_claimed:
            found_claimed = True
            numbers["token_ratio"] = ratio
            if max_ratio is not None:
                ok = ratio is not None and ratio <= float(max_ratio)
                held &= ok
                lines.append(f"  {claimed} needs ≤ {float(max_ratio):.2f}× {base}'s tokens: {'yes' if ok else 'NO'}")
    if not found_claimed:
        held = False
        lines.append(f"no {claimed} run found")
    judged = f"judged here: {base or settings.get('baseline', 'adamw')} and {claimed} learn"
    if max_ratio is None:
        lines.append(judged + "; the token ratio is reported, not judged (max_token_ratio: null)")
    else:
        lines.append(judged + f", and {claimed} needs ≤ {float(max_ratio):.2f}× the tokens")
    lines.extend(skipped)
    return Verdict(bool(held), lines, numbers)


def draw(analysis: EvalAnalysis) -> Figure:
    """Eval perplexity against tokens, one curve per run: ▼ where each reaches the baseline's
    final perplexity (dashed), beside the task's optimum (dotted) where it knows one."""
    from matplotlib.ticker import EngFormatter, LogFormatter

    order, baseline, claimed = analysis.optimizers, analysis.baseline, analysis.claimed
    target = analysis.target
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(order)}
    fig, axes = new_figure(width=5.6, height=3.8)
    ax = axes[0]
    seen: dict[str, int] = {}
    for k, label in enumerate(analysis.labels):
        points = analysis.curves[label]
        optimizer = points[0]["optimizer"]
        colour = colours.get(optimizer, PALETTE[(len(order) + k) % len(PALETTE)])
        repeat = seen[optimizer] = seen.get(optimizer, -1) + 1  # runs of one optimizer: line styles
        finite = [p for p in points if math.isfinite(p["eval_ppl"])]
        lr = points[0]["lr"]
        ax.plot([p["tokens"] for p in finite], [p["eval_ppl"] for p in finite], marker="o", markersize=2.5,
                color=colour, linestyle=("-", "--", "-.", ":")[repeat % 4], label=f"{label} (lr {lr:g})" if isinstance(lr, (int, float)) else label,
                linewidth=2.2 if optimizer in (baseline, claimed) else 1.4,
                zorder=3 if optimizer in (baseline, claimed) else 2)
        if analysis.reached.get(label) is not None:
            ax.plot([analysis.reached[label]], [math.exp(target)], marker="v", markersize=7,
                    color=colour, markeredgecolor="black", markeredgewidth=0.6, linestyle="none",
                    zorder=4)
    if target is not None:
        ax.axhline(math.exp(target), color="black", linestyle="--", linewidth=0.9,
                   label=f"{baseline}'s final ppl {math.exp(target):.3g} (▼ reached)")
    if analysis.optimum is not None:
        ax.axhline(math.exp(analysis.optimum), color="grey", linestyle=":", linewidth=1.2,
                   label=f"optimum (exp eval/optimal_loss) {math.exp(analysis.optimum):.3g}")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_xlim(left=0)
    ax.set_xlabel("tokens")
    ax.set_ylabel("eval perplexity")
    if analysis.title:
        ax.set_title(analysis.title, fontsize=10)
    ax.legend(loc="upper right")
    return fig


def _tokens(value: float | None) -> str:
    if value is None:
        return "—"
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.0f}"
