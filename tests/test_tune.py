"""``optbench tune`` on logistic regression: each protocol spends exactly its budget per optimizer
(counted from the run store), a rerun recomputes nothing, a killed tune resumes, the frozen preset
is the winner's config, and the tuned GD and AdamW come within 1e-4 of a dense lr grid's best."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import optbench, optbench_in_process
from omegaconf import OmegaConf

from optbench.errors import OptbenchError
from optbench.runner.config import compose
from optbench.runner.identity import run_id, semantic
from optbench.sweeps.collect import find_runs
from optbench.sweeps.status import sweep_status
from optbench.sweeps.tune import tune
from optbench.sweeps.tune_plan import TuneOptions
from optbench.sweeps.tune_record import read_tune

pytestmark = pytest.mark.usefixtures("one_thread")

LOGREG = ["task=logreg", "train.steps=100", "train.eval_every=20", "train.log_every=20", "logger=none"]
METRIC = "eval/suboptimality"
# gradient descent and AdamW over the learning rate alone: the ranges where 100 full-batch steps
# on breast_cancer get anywhere (GD is stable up to lr ≈ 9)
LR_ONLY = {
    "optimizers": ["sgd", "adamw"],
    "overrides": ["logger=none"],
    "tasks": {"logreg": {
        "overrides": LOGREG[:-1], "metric": METRIC, "mode": "min",
        "search": {"optimizer.momentum": None, "optimizer.weight_decay": None, "optimizer.betas": None,
                   "sgd": {"optimizer.lr": {"low": 0.1, "high": 10.0}},
                   "adamw": {"optimizer.lr": {"low": 1.0e-3, "high": 1.0}}}}},
}


def trials_in_store(store: Path) -> Counter:
    """Distinct configs (the seed aside) per optimizer among the store's runs: the trials run."""
    configs = set()
    for run in store.iterdir():
        config = semantic(yaml.safe_load((run / "config.yaml").read_text()))
        config.pop("seed")
        configs.add((json.loads((run / "summary.json").read_text())["optimizer"], json.dumps(config, sort_keys=True)))
    return Counter(optimizer for optimizer, _ in configs)


def summaries(store: Path) -> dict[str, bytes]:
    return {run.name: (run / "summary.json").read_bytes() for run in store.iterdir()}


def lr_only_suite(directory: Path, **changes) -> str:
    path = directory / "suite.yaml"
    path.write_text(yaml.safe_dump({**LR_ONLY, **changes}))
    return str(path)


@pytest.fixture(scope="module")
def quasi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One quasirandom tune of GD and AdamW, 8 trials each, its winners at seeds 0 and 1."""
    root = tmp_path_factory.mktemp("quasi")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPTBENCH_PRESETS", str(root / "presets"))
        options = TuneOptions(overrides=[f"store={root / 'store'}"], suite=lr_only_suite(root), protocol="quasirandom",
                              budget=8, final_seeds=[0, 1], out=root / "out")
        record, out = tune(options)
        yield {"record": record, "out": out, "store": root / "store", "options": options, "root": root}


def test_quasirandom_spends_the_budget_and_records_every_trial(quasi) -> None:
    record, out, store = quasi["record"], quasi["out"], quasi["store"]
    assert trials_in_store(store) == {"sgd": 8, "adamw": 8}
    assert len(list(store.iterdir())) == 2 * 8 + 2  # the winners at seed 1: seed 0 is a trial's run
    assert read_tune(out) == record
    tuning = record.tasks["logreg"]
    assert (tuning.metric, tuning.mode, record.budget, record.seeds, record.final_seeds) == (METRIC, "min", 8, [0], [0, 1])
    for optimizer, entry in tuning.optimizers.items():
        assert list(tuning.search[optimizer]) == ["optimizer.lr"]
        for trial in entry.trials:  # each score is recomputed from its run dir
            finals = [json.loads((Path(d) / "summary.json").read_text())["final"][METRIC] for d in trial.run_dirs]
            assert trial.score == statistics.fmean(finals) and not trial.failed
        scores = [t.score for t in entry.trials]
        assert entry.winner == scores.index(min(scores))
        assert [json.loads((Path(d) / "summary.json").read_text())["seed"] for d in entry.final_run_dirs] == [0, 1]
        assert entry.final_run_dirs[0] == entry.trials[entry.winner].run_dirs[0]
    table = pd.read_csv(out / "trials.csv")
    assert len(table) == 16 and table["winner"].sum() == 2 and not table["failed"].any()
    assert sorted(table.loc[table.optimizer == "sgd", "score"]) == sorted(t.score for t in tuning.optimizers["sgd"].trials)


def test_a_rerun_recomputes_nothing_and_changed_settings_are_refused(quasi) -> None:
    store = quasi["store"]
    before = summaries(store)
    record, _ = tune(quasi["options"])
    assert summaries(store) == before and record == quasi["record"]
    changed = TuneOptions(**{**vars(quasi["options"]), "budget": 7})
    with pytest.raises(OptbenchError, match=r"holds a tune with other settings \(budget: 8 -> 7\)"):
        tune(changed)


def test_the_frozen_preset_composes_to_the_winners_run(quasi, monkeypatch) -> None:
    monkeypatch.setenv("OPTBENCH_PRESETS", str(quasi["root"] / "presets"))
    for optimizer, entry in quasi["record"].tasks["logreg"].optimizers.items():
        text = Path(entry.preset).read_text()
        assert text.startswith("# @package _global_\n") and f"override /optimizer: {optimizer}" in text
        assert text.count(" -> ") == 8 and "* " + " ".join(entry.trials[entry.winner].overrides) in text
        cfg = compose([f"tuned=logreg/{optimizer}"])
        assert run_id(OmegaConf.to_container(cfg, resolve=True)) == Path(entry.final_run_dirs[0]).name
        assert compose([f"tuned=logreg/{optimizer}", "optimizer.lr=0.5"]).optimizer.lr == 0.5  # the command line wins


def test_tuned_gd_and_adamw_are_within_1e_4_of_a_dense_lr_grid(quasi) -> None:
    """The acceptance criterion: 8 quasirandom trials against a 20-point grid over the same range,
    run the same way (100 steps, final eval/suboptimality)."""
    dense, out = tune(TuneOptions(**{**vars(quasi["options"]), "protocol": "grid", "budget": 20, "final_seeds": [0],
                                     "out": quasi["root"] / "dense"}))
    assert len({r.run_id for r in find_runs(out / "logreg" / "grid")}) == 40
    for optimizer, entry in quasi["record"].tasks["logreg"].optimizers.items():
        tuned = entry.trials[entry.winner].score
        grid = min(t.score for t in dense.tasks["logreg"].optimizers[optimizer].trials)
        assert tuned - grid <= 1e-4, f"{optimizer}: tuned {tuned:.3g}, dense grid's best {grid:.3g}"


def test_grid_and_coordinate_spend_exactly_the_budget_on_full_spaces(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPTBENCH_PRESETS", str(tmp_path / "presets"))
    for protocol, budget in (("grid", 6), ("coordinate", 7)):
        store = tmp_path / protocol / "store"
        record, _ = tune(TuneOptions(overrides=[*LOGREG, f"store={store}"], optimizers=["sgd", "adamw"],
                                       protocol=protocol, budget=budget, metric=METRIC, final_seeds=[0],
                                       out=tmp_path / protocol / "out"))
        assert trials_in_store(store) == {"sgd": budget, "adamw": budget}
        assert all(len(e.trials) == budget and e.preset for e in record.tasks["logreg"].optimizers.values())
    # sgd: its defaults; the lr's 5 levels but the default's; momentum 0.9 at the best lr; one lr at 0.9
    rounds = sorted(p.name for p in (tmp_path / "coordinate" / "out" / "logreg").iterdir())
    assert rounds == ["coordinate-1", "coordinate-2", "coordinate-3", "coordinate-4", "final"]
    status = sweep_status(tmp_path / "coordinate" / "out" / "logreg" / "coordinate-2")  # lr levels
    assert status.manifest.sweeper == "trials" and len(status.records) == status.manifest.size
    assert {r.status for r in status.records} == {"completed"}


def test_a_killed_tune_resumes_and_finishes_with_exactly_the_budget(tmp_path: Path, monkeypatch) -> None:
    from optbench.runner.loop import Trainer

    monkeypatch.setenv("OPTBENCH_PRESETS", str(tmp_path / "presets"))
    original, reached = Trainer.checkpoint, []

    def killed_at_the_third_run(self: Trainer) -> None:
        original(self)
        if self.state.step == 40:
            reached.append(self.state.step)
            if len(reached) == 3:
                raise KeyboardInterrupt  # the tune dies with its third run, mid-way

    store = tmp_path / "store"
    options = TuneOptions(overrides=[*LOGREG, "train.checkpoint_every=20", f"store={store}"],
                          optimizers=["sgd", "adamw"], budget=4, metric=METRIC, final_seeds=[0], out=tmp_path / "out")
    monkeypatch.setattr(Trainer, "checkpoint", killed_at_the_third_run)
    with pytest.raises(KeyboardInterrupt):
        tune(options)
    states = Counter(json.loads((run / "summary.json").read_text())["status"] for run in store.iterdir())
    assert states == {"completed": 2, "interrupted": 1}
    monkeypatch.setattr(Trainer, "checkpoint", original)
    record, _ = tune(options)
    assert trials_in_store(store) == {"sgd": 4, "adamw": 4}
    assert all(not t.failed for e in record.tasks["logreg"].optimizers.values() for t in e.trials)


def test_optuna_spends_exactly_n_trials(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="hydra-optuna-sweeper is not installed")
    monkeypatch.setenv("OPTBENCH_PRESETS", str(tmp_path / "presets"))
    record, out = tune(TuneOptions(overrides=[f"store={tmp_path / 'store'}"], suite=lr_only_suite(tmp_path),
                                   optimizers=["sgd"], protocol="optuna", budget=3, final_seeds=[0], out=tmp_path / "out"))
    jobs = find_runs(out / "logreg" / "optuna-sgd")
    assert len(jobs) == 3 and trials_in_store(tmp_path / "store") == {"sgd": 3}
    entry = record.tasks["logreg"].optimizers["sgd"]
    assert [t.run_dirs[0] for t in entry.trials] == [str(r.path) for r in jobs] and entry.winner is not None


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    task = [*LOGREG, "--optimizers", "sgd"]
    nothing = {k: None for k in ("optimizer.lr", "optimizer.momentum", "optimizer.weight_decay", "optimizer.betas")}
    empty = lr_only_suite(tmp_path, tasks={"logreg": {**LR_ONLY["tasks"]["logreg"], "search": nothing}})
    cases = [
        ([*task, "--protocol", "bayes"], "unknown protocol 'bayes'; accepted: grid, quasirandom, coordinate, optuna"),
        ([*task, "--budget", "0"], "--budget 0: the trials per optimizer must be at least 1"),
        ([*LOGREG, "--optimizers", "sgd,adamw2"], "unknown optimizer(s) adamw2; known: adafactor"),
        (["--suite", "nope"], "no suite named 'nope'; available: cpu, paper"),
        ([*task, "--metric", "eval/ppl"], "--metric eval/ppl is not a metric the runs of task logreg log; they log: train/loss"),
        ([*task, "--protocol", "optuna", "--seeds", "0,1"], "--protocol optuna runs one seed per trial"),
        (["--suite", empty, "--budget", "2"], "an empty search space for --budget 2"),
    ]
    for args, says in cases:
        result = optbench_in_process("tune", *args, f"store={tmp_path / 'store'}", "--out", str(tmp_path / "out"))
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and says in lines[0], (args, result.stderr)
    assert not (tmp_path / "store").exists() and not (tmp_path / "out").exists()  # nothing ran


def test_a_tune_whose_every_trial_diverges_exits_1_and_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPTBENCH_PRESETS", str(tmp_path / "presets"))
    suite = lr_only_suite(tmp_path, optimizers=["sgd"], tasks={"logreg": {
        **LR_ONLY["tasks"]["logreg"], "search": {"sgd": {"optimizer.lr": {"low": 1.0e3, "high": 1.0e4}},
                                                 "optimizer.momentum": None}}})
    result = optbench("tune", "--suite", suite, "--protocol", "grid", "--budget", "2", "store=store",
                      "--out", "out", cwd=tmp_path, check=False)
    assert result.returncode == 1, result.stderr
    assert "every trial failed" in result.stdout and "wrote" in result.stdout
    table = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert table["failed"].all() and table["reason"].str.startswith("seed 0 diverged").all()
    assert not (tmp_path / "presets").exists() and not (tmp_path / "out" / "logreg" / "final" / "jobs").exists()
