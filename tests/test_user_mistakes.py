"""User mistakes that once gave a traceback, or ran silently with no effect: each is one
`error:` line and exit code 2, through `optbench show` and `optbench run`; and generated
overrides (garbage values, unknown keys, +/++/~, unicode, braces) never give a traceback.

In this process (typer's CliRunner) wherever possible, so the file stays fast; a few runs go
through a real `optbench` subprocess.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import optbench
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from optbench.cli import app
from optbench.errors import OptbenchError

RUN = ("train.steps=2", "logger=none")
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _in_a_scratch_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Default run dirs (runs/...) land in a scratch dir, never in the checkout."""
    scratch = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(scratch)
        yield scratch


def error_line(result, where: str = "") -> str:
    """The single `error:` line of a result that exited with 2 (and no traceback)."""
    shown = f"{where}\nexit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.exit_code == 2, shown
    assert "Traceback" not in result.stdout + result.stderr, shown
    lines = [line for line in result.stderr.split("\n") if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    return lines[0]


def show(*overrides: str):
    return runner.invoke(app, ["show", *overrides])


def run(run_dir: Path, *overrides: str):
    """`optbench run OVERRIDES train.steps=2 logger=none`, in ``run_dir`` unless given."""
    where = [] if any(o.startswith("hydra.run.dir=") for o in overrides) else [f"hydra.run.dir={run_dir}"]
    return runner.invoke(app, ["run", *overrides, *RUN, *where])


# each mistake: its overrides, and what its line must say (the key, the value, what is accepted)
MISTAKES = {
    "seed-negative": (["seed=-1"], ["seed=-1", "from 0 to 2**64 - 1"]),
    "seed-too-large": ([f"seed={2**64}"], [f"seed={2**64}", "from 0 to 2**64 - 1"]),
    "lr-nan": (["optimizer.lr=nan"], ["optimizer.lr=nan", "finite number"]),
    "lr-inf": (["optimizer.lr=inf"], ["optimizer.lr=inf", "finite number"]),
    "fallback-lr-nan": (["optimizer=swan", "optimizer.fallback.lr=-inf"],
                        ["optimizer.fallback.lr=-inf", "finite number"]),
    "betas-nan": (["optimizer=adam", "optimizer.betas=[0.9,nan]"], ["optimizer.betas[1]=nan"]),
    "int-too-large": (["optimizer.weight_decay=18446744073709551616"],
                      ["optimizer.weight_decay=18446744073709551616", "out of range", "2**63 - 1"]),
    "grad-clip-nan": (["train.grad_clip=nan"], ["train.grad_clip=nan", "a number"]),
    "group-float": (["diagnostics=2.0"], ["diagnostics=2.0", "available: none, sharpness"]),
    "group-int": (["data=0"], ["data=0", "available: c4, files, synthetic"]),
    "group-null": (["optimizer=null"], ["optimizer=null", "available: ", "adamw"]),
    "group-bool": (["schedule=true"], ["schedule=true", "available: constant, cosine, linear"]),
    "group-list-of-numbers": (["schedule=[nan]"], ["schedule=[nan]", "available: constant"]),
    "delete-group-list": (["~task=[]"], ["task=[]"]),
    "typed-node-as-value": (["train=${now:%Y}"], ["train"]),  # with run's train.steps=2: an assertion
    "delete-seed": (["~seed"], ["seed is missing", "~seed", "seed=VALUE"]),
    "delete-optimizer": (["~optimizer"], ["optimizer is missing", "optimizer=NAME"]),
    "delete-device": (["~device"], ["device is missing", "~device"]),
    "delete-train": (["~train"], ["train"]),  # run's own train.steps=2 then has nowhere to go
    "interpolation-missing": (["device=${foo.bar}"], ["device=${foo.bar}", "'foo.bar' not found"]),
    "interpolation-in-plugin": (["optimizer.lr=${train.nope}"], ["optimizer.lr=${train.nope}", "not found"]),
    "resolver-missing": (["+task.root=${nope:x}"], ["task.root=${nope:x}", "nope"]),
    "add-unknown-train-key": (["+train.stepz=3"], ["train.stepz=3", "train accepts: steps, tokens"]),
    "force-add-unknown-train-key": (["++train.stepz=3"], ["train.stepz=3", "train accepts: steps"]),
    "add-unknown-top-key": (["+foo=1"], ["foo=1", "accepts: task, optimizer"]),
    "add-unknown-objective-key": (["+objective.metrik=x"], ["objective.metrik=x", "metric, penalty"]),
    "option-of-nothing": (["+diagnostics.every=3"], ["diagnostics.every=3", "no effect", "diagnostics=NAME"]),
    "data-at-top": (["+data.source=files"], ["data=", "task.data"]),
}
IDS = list(MISTAKES)


@pytest.mark.parametrize("name", IDS)
def test_show_refuses(name):
    overrides, expected = MISTAKES[name]
    line = error_line(show(*overrides), name)
    for fragment in expected:
        assert fragment in line, line


@pytest.mark.parametrize("name", IDS)
def test_run_refuses_before_starting(tmp_path, name):
    overrides, expected = MISTAKES[name]
    line = error_line(run(tmp_path / "D", *overrides), name)
    for fragment in expected:
        assert fragment in line, line
    assert not (tmp_path / "D").exists()  # nothing was started


def _bad_dirs(tmp_path: Path) -> dict[str, tuple[str, list[str]]]:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory\n")
    return {
        "proc": ("/proc/optbench-run", ["hydra.run.dir=/proc/optbench-run", "/proc", "writable"]),
        "under-a-file": (f"{a_file}/run", [f"hydra.run.dir={a_file}/run", "is a file", "under a directory"]),
        "a-file": (str(a_file), [f"hydra.run.dir={a_file}", "existing file", "directory"]),
    }


@pytest.mark.parametrize("kind", ["proc", "under-a-file", "a-file"])
def test_run_dir_that_cannot_be_made(tmp_path, kind):
    path, expected = _bad_dirs(tmp_path)[kind]
    line = error_line(run(tmp_path, f"hydra.run.dir={path}"), kind)
    for fragment in expected:
        assert fragment in line, line
    assert show(f"hydra.run.dir={path}").exit_code == 0  # showing a config writes nothing


def test_run_dir_checked_by_resolve(tmp_path):
    from optbench.runner.config import compose
    from optbench.runner.spec import resolve

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(OptbenchError, match="is under .*a_file, which is a file"):
        resolve(compose(["logger=none"]), a_file / "run")
    assert resolve(compose(["logger=none"]), tmp_path / "new" / "run").run_dir is not None


def test_store_that_cannot_be_made_refuses_a_sweep(tmp_path):
    result = runner.invoke(app, ["run", "-m", "seed=0,1", *RUN, "store=/proc/optbench-store",
                                 f"hydra.sweep.dir={tmp_path / 'S'}"])
    assert "store=/proc/optbench-store" in error_line(result)
    assert not (tmp_path / "S").exists()


@pytest.mark.parametrize("name, content", [
    ("binary.txt", bytes(range(128, 256)) * 8),
    ("broken.jsonl", b'{"text": "fine"}\n{"text": '),
])
def test_unreadable_text_data(tmp_path, name, content):
    pytest.importorskip("datasets")
    data = tmp_path / name
    data.write_bytes(content)
    result = run(tmp_path / "D", "task=llama_tiny", "data=files", f"task.data.train_files={data}",
                 f"task.data.val_files={data}", "task.data.tokenizer=bytes")
    line = error_line(result, name)
    assert f"cannot read task.data.val_files={data}" in line and "accepted: UTF-8 text" in line
    if name.endswith(".txt"):
        assert "not UTF-8 text" in line


# a few through a real subprocess: the path a user takes, Hydra launching in its own process
@pytest.mark.parametrize("args", [
    ["seed=-1"],
    ["+train.stepz=3"],
    ["diagnostics=2.0"],
], ids=" ".join)
def test_subprocess_run(tmp_path, args):
    result = optbench("run", *args, *RUN, f"hydra.run.dir={tmp_path / 'D'}", check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    (line,) = [line for line in result.stderr.split("\n") if line.strip()]
    assert line.startswith("error: ") and args[0].lstrip("+") in line
    assert not (tmp_path / "D").exists()


def test_subprocess_run_dir_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    result = optbench("run", *RUN, f"hydra.run.dir={tmp_path / 'f'}", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.split("\n") if line.strip()]
    assert line == f"error: hydra.run.dir={tmp_path / 'f'} is an existing file, not a directory; give a directory path"


def test_valid_overrides_still_show_and_run(tmp_path):
    shown = show("optimizer=swan", "optimizer.fallback.lr=3e-4", "train.divergence_factor=inf",
                 "seed=18446744073709551615", f"hydra.run.dir={tmp_path / 'x' / 'y'}")
    assert shown.exit_code == 0, shown.stderr
    result = run(tmp_path / "D", "seed=3", "train.grad_clip=1.0")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "D" / "summary.json").is_file()


# --- generated overrides -------------------------------------------------------------------

KEYS = ["seed", "device", "precision", "store", "train.steps", "train.tokens", "train.log_every",
        "train.grad_clip", "train.keep_checkpoints", "train.divergence_factor", "train.parallel",
        "objective.metric", "objective.penalty", "optimizer.lr", "optimizer.momentum",
        "optimizer.weight_decay", "optimizer.fallback.lr", "task.data", "task.path", "task.n",
        "schedule.warmup", "diagnostics.every", "logger.project", "hydra.run.dir", "train.ema",
        "train.warm_start.run", "train.warm_start.step", "target.metric", "target.value", "target.mode",
        "target.stop", "schedule.decay_fraction", "schedule.shape"]
GROUPS = ["task", "optimizer", "schedule", "logger", "diagnostics", "data", "tuned"]
UNKNOWN = ["train.stepz", "foo", "optimizer.lrr", "task.bogus", "objective.metrik", "seed.x",
           "train.steps.x", "train", "objective", "hydra.foo"]
ODD = ["", " ", "nan", "inf", "-inf", "-1", "0", "1e309", "2**64", "18446744073709551616", "null",
       "true", "[]", "{}", "[1,2", "{a:", "${", "}", "${foo.bar}", "${seed}", "${oc.env:NOPE}",
       "${oc.env:HOME}", "${now:%Y}", "${hydra:runtime.choices.task}", "${nope:x}", "'quoted'",
       '"x"', "a,b", "range(3)", "choice(a,b)", "glob(*)", "interval(0,1)", "sgd", "adam", "none",
       "cosine", "${{}}", "{{}}", "${a:${b}}", "\\", "=", "a=b", "~", "+", "${train}", "${task}",
       "[nan]", "{lr: nan}", "[${seed}]", "/proc/x", "ü", "数据", "🙂", "é=é"]
# no control characters or line separators: a terminal argument that holds one is not one line
TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=10)
BRACES = st.recursive(
    st.text(alphabet="ab.:1,$ ", max_size=3),
    lambda inner: (st.tuples(inner, inner).map(lambda t: "{" + t[0] + ":" + t[1] + "}")
                   | inner.map(lambda s: "${" + s + "}")
                   | st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]")),
    max_leaves=6,
)
VALUES = st.one_of(
    st.sampled_from(ODD),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats().map(repr),
    TEXT,
    BRACES,
)
PREFIXES = st.sampled_from(["", "", "+", "++", "~"])
BARE = st.sampled_from([False, False, False, True])  # True: no `=value` at all


def _override(prefix: str, key: str, value: str, bare: bool) -> str:
    return prefix + key + ("" if bare else "=" + value)


OVERRIDES = st.builds(_override, PREFIXES, st.sampled_from(KEYS + GROUPS + UNKNOWN), VALUES, BARE)


def _no_traceback(result, override: str) -> None:
    """Exit 0 (the override was fine), or 2 with one `error:` line; never anything else."""
    if result.exit_code == 0:
        assert "Traceback" not in result.stdout + result.stderr, override
        return
    assert not (result.exception and not isinstance(result.exception, SystemExit)), (
        f"{override!r} raised {type(result.exception).__name__}: {result.exception}")
    error_line(result, repr(override))


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_overrides_through_show(data):
    """Every key and group, each time with a drawn prefix and value (or none): 150 overrides, each
    key in three (the first time with an empty value), not 300 drawn at random that leave some
    keys to chance."""
    for key in KEYS + GROUPS + UNKNOWN:
        override = _override(data.draw(PREFIXES), key, data.draw(VALUES), data.draw(BARE))
        _no_traceback(show(override), override)


_runs = itertools.count()


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(override=OVERRIDES)
def test_generated_overrides_through_run(override):
    run_dir = Path(os.getcwd()) / "generated" / str(next(_runs))
    _no_traceback(run(run_dir, override), override)
