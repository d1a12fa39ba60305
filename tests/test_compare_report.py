"""`optbench compare` end to end over a few tiny real runs (logistic regression, AdamW and SGD at
two learning rates and two seeds): its tables against numbers recomputed here from the run dirs,
a tune dir read the same way, the HTML report rendered by headless Chromium with every figure
decoded and the CSV's values in its cells, and bad input as one line and exit 2."""

from __future__ import annotations

import html.parser
import json
import math
import shutil
import statistics
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from helpers import optbench
from scipy import stats
from typer.testing import CliRunner

from optbench.cli import app
from optbench.loggers.jsonl import read_metrics
from optbench.runner.config import compose
from optbench.runner.execute import execute
from optbench.runner.spec import resolve
from optbench.sweeps.compare import Options, cell, compare
from optbench.sweeps.tune_record import OptimizerTuning, TaskTuning, Trial, TuneRecord, write_tune

RATES = {"adamw": (0.01, 0.1), "sgd": (0.1, 1.0)}
SEEDS = (0, 1)
TRAIN = ["task=logreg", "task.batch_size=32", "train.steps=30", "train.eval_every=5", "train.log_every=5",
         "train.checkpoint_every=1000", "logger=none"]
runner = CliRunner()


def _dir(optimizer: str, lr: float, seed: int) -> str:
    return f"{optimizer}-lr{lr}-seed{seed}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """8 runs of 30 steps in this process (about 3 s): each optimizer at two rates and two seeds."""
    root = tmp_path_factory.mktemp("runs")
    for optimizer, rates in RATES.items():
        for lr in rates:
            for seed in SEEDS:
                overrides = [*TRAIN, f"optimizer={optimizer}", f"optimizer.lr={lr}", f"seed={seed}"]
                execute(resolve(compose(overrides), root / _dir(optimizer, lr, seed), task="logreg",
                                optimizer=optimizer, overrides=overrides))
    return root


def _final(run_dir: Path) -> float:
    return json.loads((run_dir / "summary.json").read_text())["final"]["eval/loss"]


def _best(runs: Path, optimizer: str) -> tuple[float, list[float]]:
    """The rate with the lowest mean final eval/loss over seeds, and its final values."""
    finals = {lr: [_final(runs / _dir(optimizer, lr, s)) for s in SEEDS] for lr in RATES[optimizer]}
    lr = min(finals, key=lambda rate: statistics.fmean(finals[rate]))
    return lr, finals[lr]


def _steps_to(run_dir: Path, target: float) -> float | None:
    """The step at which eval/loss first gets to ``target``, linear between evals, computed here."""
    evals = [(line["step"], line["eval/loss"]) for line in read_metrics(run_dir / "metrics.jsonl")
             if "eval/loss" in line]
    for (s0, v0), (s1, v1) in zip([evals[0], *evals], evals):
        if v1 <= target:
            return s1 if v0 == v1 else s0 + (s1 - s0) * (v0 - target) / (v0 - v1)
    return None


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report")
    result = runner.invoke(app, ["compare", str(runs), "--baseline", "adamw", "--clock", "steps", "--out", str(out)],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.stdout + result.stderr
    return out, result.stdout


def test_compare_writes_every_output(report):
    out, printed = report
    for name in ("compare.csv", "compare.parquet", "profiles.csv", "sensitivity.csv", "report.html",
                 *(f"{figure}.{suffix}" for figure in ("curves", "profiles", "sensitivity") for suffix in ("png", "pdf"))):
        assert (out / name).stat().st_size > 200, name
    assert "against adamw" in printed and "performance-profile scores (steps" in printed


def test_compare_numbers_equal_those_recomputed_from_the_run_dirs(runs, report):
    out, _ = report
    table = pd.read_csv(out / "compare.csv", dtype=str, keep_default_na=False).set_index("optimizer")
    assert list(table.index) == ["adamw", "sgd"] and list(table["baseline"]) == ["yes", "no"]
    base = _best(runs, "adamw")[1]
    target = statistics.fmean(base)
    assert table.loc["adamw", "target"] == cell(target) and table.loc["adamw", "target_source"] == "baseline final mean"
    steps = {}
    for optimizer in RATES:
        lr, finals = _best(runs, optimizer)
        row = table.loc[optimizer]
        assert row["runs"] == f"best of 2 config(s): optimizer.lr={lr}"
        assert row["final_mean"] == cell(statistics.fmean(finals))
        half = stats.t.ppf(0.975, 1) * statistics.stdev(finals) / math.sqrt(2)
        assert row["final_ci95"] == cell(half)
        crossings = [_steps_to(runs / _dir(optimizer, lr, s), target) for s in SEEDS]
        reached = [c for c in crossings if c is not None]
        assert row["reached"] == str(len(reached))
        steps[optimizer] = statistics.fmean(reached) if reached else None
        assert row["steps_to_target"] == (cell(steps[optimizer]) if reached else "not reached")
        welch = stats.ttest_ind(finals, base, equal_var=False)
        assert row["welch_p"] == cell(float(welch.pvalue))
    fastest = min(s for s in steps.values() if s is not None)
    for optimizer, s in steps.items():  # every arm here has at least half its seeds at the target
        assert table.loc[optimizer, "profile_ratio"] == cell(s / fastest)
    assert table.loc["adamw", "work_speedup"] == "1"  # the baseline against itself

    typed = pd.read_parquet(out / "compare.parquet").set_index("optimizer")
    for column in ("final_mean", "final_ci95", "welch_t", "welch_p", "fit_a", "fit_b", "fit_c", "profile_ratio"):
        assert [cell(float(v)) for v in typed[column]] == list(table[column]), column

    profile = pd.read_csv(out / "profiles.csv")
    assert set(profile["optimizer"]) == {"adamw", "sgd"} and profile["tau"].between(1, 4).all()
    sensitivity = pd.read_csv(out / "sensitivity.csv")
    assert len(sensitivity) == 4 and sensitivity.loc[sensitivity["near_best"] == "yes", "lr"].tolist() == [
        _best(runs, "adamw")[0], _best(runs, "sgd")[0]]


def test_a_tune_dir_gives_its_target_and_its_winners(runs, tmp_path):
    def trial(optimizer: str, lr: float) -> Trial:
        return Trial([f"optimizer={optimizer}", f"optimizer.lr={lr}"],
                     [str(runs / _dir(optimizer, lr, s)) for s in SEEDS])

    tasks = {"logreg": TaskTuning(TRAIN, "eval/loss", "min", target=0.15)}
    for optimizer, rates in RATES.items():
        trials = [trial(optimizer, lr) for lr in rates]
        winner = rates.index(_best(runs, optimizer)[0])
        tasks["logreg"].optimizers[optimizer] = OptimizerTuning(trials, winner, None, trials[winner].run_dirs)
    write_tune(tmp_path, TuneRecord("grid", 2, list(SEEDS), list(SEEDS), tasks=tasks))

    rows = {row["optimizer"]: row for row in compare([tmp_path], Options("adamw", clock="steps")).rows}
    for optimizer in RATES:
        lr, finals = _best(runs, optimizer)
        row = rows[optimizer]
        assert row["target"] == 0.15 and row["target_source"] == "tune.json"
        assert row["runs"] == f"tuned: optimizer={optimizer} optimizer.lr={lr}"
        assert row["final_mean"] == pytest.approx(statistics.fmean(finals)) and row["trials"] == 2
        crossings = [_steps_to(runs / _dir(optimizer, lr, s), 0.15) for s in SEEDS]
        assert row["reached"] == sum(c is not None for c in crossings)
        if None not in crossings:
            assert row["steps_to_target"] == pytest.approx(statistics.fmean(crossings))


class _Cells(html.parser.HTMLParser):
    """The body cells of the first <table>, row by row, and the <body>'s attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.tables = 0
        self.cell: list[str] | None = None
        self.body: dict[str, str | None] = {}

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.body = dict(attrs)
        elif tag == "table":
            self.tables += 1
        elif tag == "tr" and self.tables == 1:
            self.rows.append([])
        elif tag == "td" and self.tables == 1:
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            self.rows[-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


COUNT_DECODED = """<script>
window.addEventListener("load", () => document.body.setAttribute(
  "data-decoded", [...document.images].filter(image => image.complete && image.naturalWidth > 0).length));
</script></body>"""


def test_the_report_renders_in_headless_chromium_with_the_csv_numbers(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    out, _ = report
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page and page.count("data:image/png;base64,") == 3
    probe = tmp_path / "report.html"  # the report, plus a script that counts the decoded images
    probe.write_text(page.replace("</body>", COUNT_DECODED), encoding="utf-8")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    cells = _Cells()
    cells.feed(dom)
    assert cells.body.get("data-decoded") == "3", dom[:300]
    table = pd.read_csv(out / "compare.csv", dtype=str, keep_default_na=False)
    assert cells.rows[1:] == table.values.tolist()  # rows[0]: the header row, <th> cells


def _error(*args: str) -> str:
    result = runner.invoke(app, ["compare", *args])
    shown = f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert result.exit_code == 2 and "Traceback" not in result.stdout + result.stderr, shown
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    return lines[0]


def test_bad_input_is_one_line_and_exit_2(runs, tmp_path):
    assert "is not a directory" in _error(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    assert "holds no runs" in _error(str(tmp_path / "empty"))
    line = _error(str(runs), "--baseline", "lion")
    assert "baseline lion" in line and "adamw, sgd" in line
    line = _error(str(runs), "--metric", "eval/ppl")
    assert "no final eval/ppl" in line and "eval/loss" in line
    assert "accepted: min, max" in _error(str(runs), "--mode", "lowest")
    assert "accepted: seconds, steps, work" in _error(str(runs), "--clock", "hours")
    # and through the real command line, once
    result = optbench("compare", str(runs), "--baseline", "lion", check=False)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: baseline lion has no runs on task logreg")
