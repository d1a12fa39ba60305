"""What ``optbench tune`` was asked to do, checked: the command line's options over a suite's
settings over the defaults, each mistake one line before anything runs.

A task's overrides are split in two: those that say what a run computes (recorded in tune.json
and compared when a tune is resumed) and Hydra's own (``hydra/launcher=...``, ``hydra.launcher.*``),
which say where and how jobs run and may differ between a tune and its resumption.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optbench.errors import OptbenchError
from optbench.runner.config import config_dir
from optbench.runner.target import Mode
from optbench.sweeps.presets_root import presets_root
from optbench.sweeps.protocols import Protocol
from optbench.sweeps.search_space import override
from optbench.sweeps.suite import Suite, load

DEFAULTS: dict[str, Any] = {
    "protocol": Protocol.quasirandom.value,
    "budget": 8,
    "seeds": [0],
    "final_seeds": [0, 1, 2],  # a mean ± CI over three seeds in the report
    "metric": "eval/loss",
    "mode": Mode.min.value,
}
#: overrides that the tune's own options set: refused among OVERRIDES, naming the option
OWN_KEYS = {"optimizer": "--optimizers", "seed": "--seeds", "hydra.sweep.dir": "--out",
            "hydra/sweeper": "--protocol", "hydra.sweeper": "--protocol"}


@dataclass
class TuneOptions:
    """As the user gave them; None where not given (the suite's setting, else the default)."""

    overrides: list[str] = field(default_factory=list)
    optimizers: list[str] | None = None
    protocol: str | None = None
    budget: int | None = None
    metric: str | None = None
    mode: str | None = None
    seeds: list[int] | None = None
    final_seeds: list[int] | None = None
    sampler_seed: int = 0
    suite: str | None = None
    out: Path | None = None


@dataclass
class TaskPlan:
    name: str  # the suite's name for it, or its task config's
    overrides: list[str]  # what its runs compute: task=..., train.steps=..., target.*
    metric: str
    mode: Mode
    target: float | None = None
    search: dict[str, Any] = field(default_factory=dict)


@dataclass
class TunePlan:
    protocol: Protocol
    budget: int
    seeds: list[int]
    final_seeds: list[int]
    sampler_seed: int
    optimizers: list[str]
    tasks: list[TaskPlan]
    launch: list[str]  # Hydra's own overrides, given to every sweep
    out: Path
    suite: str | None = None


def _key(text: str) -> str:
    return text.lstrip("+~").partition("=")[0]


def is_launch(text: str) -> bool:
    """Hydra's own override (launcher, its options): where a job runs, not what it computes."""
    return _key(text).startswith("hydra")


def _check_overrides(overrides: list[str], suite: Suite | None) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as err:
        raise OptbenchError(f"cannot parse the overrides: {str(err).splitlines()[0]}") from None
    for item in parsed:
        key = item.get_key_element().lstrip("+~")
        own = next((option for k, option in OWN_KEYS.items() if key == k or key.startswith(k + ".")), None)
        if own:
            raise OptbenchError(f"{item.input_line}: optbench tune sets {key} itself; use {own}")
        if key == "task" and suite is not None:
            raise OptbenchError(f"{item.input_line}: the suite {suite.name} names its tasks; drop task= or --suite")
        if item.is_sweep_override():
            raise OptbenchError(f"{item.input_line} is a sweep; optbench tune runs its own sweeps, "
                                "give one value (the search spaces are configs/search/*.yaml)")


def _task_choice(overrides: list[str]) -> str:
    """The task config the overrides choose (the root config's default without one)."""
    chosen = [o.partition("=")[2] for o in overrides if _key(o) == "task"]
    if chosen:
        return chosen[-1]
    import yaml

    defaults = yaml.safe_load((config_dir() / "config.yaml").read_text())["defaults"]
    return next(d["task"] for d in defaults if isinstance(d, dict) and "task" in d)


def _ints(name: str, values: list[int] | None) -> list[int]:
    if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in values):
        raise OptbenchError(f"--{name.replace('_', '-')} {values}: give one or more seeds, e.g. 0,1,2")
    return list(dict.fromkeys(values))


def _optimizers(names: list[str] | None) -> list[str]:
    # optbench's optimizer configs and the user's under the presets root (on Hydra's search path)
    known = sorted({p.stem for root in (config_dir(), presets_root()) for p in (root / "optimizer").glob("*.yaml")})
    if not names:
        raise OptbenchError(f"give the optimizers to tune: --optimizers sgd,adamw (known: {', '.join(known)})")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise OptbenchError(f"unknown optimizer(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return list(dict.fromkeys(names))


def make_plan(options: TuneOptions) -> TunePlan:
    """The checked plan of a tune; every mistake in the options is one line."""
    suite = load(options.suite) if options.suite else None

    def setting(name: str) -> Any:
        given = getattr(options, name)
        if given is not None:
            return given
        from_suite = getattr(suite, name, None) if suite else None
        return from_suite if from_suite is not None else DEFAULTS.get(name)

    protocol = setting("protocol")
    if protocol not in Protocol.__members__:
        raise OptbenchError(f"unknown protocol {protocol!r}; accepted: {', '.join(Protocol.__members__)}")
    budget = setting("budget")
    if not isinstance(budget, int) or budget < 1:
        raise OptbenchError(f"--budget {budget}: the trials per optimizer must be at least 1 "
                            "(1: the config's defaults, for a tuning-free optimizer)")
    seeds, final_seeds = _ints("seeds", setting("seeds")), _ints("final_seeds", setting("final_seeds"))
    if protocol == Protocol.optuna and budget > 1 and len(seeds) > 1:
        raise OptbenchError(f"--protocol optuna runs one seed per trial; give one --seeds, not {','.join(map(str, seeds))}")
    optimizers = _optimizers(setting("optimizers"))
    _check_overrides(options.overrides, suite)
    given = [*(suite.overrides if suite else []), *options.overrides]
    launch = [o for o in given if is_launch(o)]
    shared = [o for o in given if not is_launch(o)]
    specs = suite.tasks if suite else [None]
    tasks = []
    for spec in specs:
        own = spec.overrides if spec else []
        _check_overrides([o for o in own if _key(o) != "task"], None)
        choice = _task_choice([*own, *shared])
        metric = options.metric or (spec.metric if spec else None) or DEFAULTS["metric"]
        mode = options.mode or (spec.mode if spec else None) or DEFAULTS["mode"]
        if mode not in Mode.__members__:
            raise OptbenchError(f"--mode {mode}: accepted: {', '.join(Mode.__members__)}")
        overrides = [f"task={choice}", *[o for o in [*own, *shared] if _key(o) != "task"]]
        target = spec.target if spec else None
        if target is not None:  # every run records when it first met the suite's target
            overrides += [override("target.metric", metric), override("target.value", float(target)),
                          f"target.mode={mode}"]
        tasks.append(TaskPlan(spec.name if spec else choice, overrides, metric, Mode(mode), target,
                              spec.search if spec else {}))
    out = options.out or Path("runs") / "tune" / (suite.name if suite else tasks[0].name)
    return TunePlan(Protocol(protocol), budget, seeds, final_seeds, options.sampler_seed, optimizers,
                    tasks, launch, out.absolute(), suite.name if suite else None)
