"""From ``optbench run`` to Hydra: check the overrides up front, then hand over to Hydra.

Checking first means a mistake in any value of a sweep is reported as one line before a single
job starts. Each sweep value is composed once (with the other keys at their first value), so
the cost grows with the number of values, not with the number of jobs. A sweep (or a command with
Hydra's own flags) goes through ``@hydra.main`` with the overrides as its command line, so
multirun, launchers, sweepers and every Hydra flag work as Hydra documents them; a single run
goes through Hydra's ``run_job`` with the config already composed and checked.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from optbench.errors import OptbenchError, first_line
from optbench.runner.config import (
    check_composed,
    check_output_dir,
    compose,
    config_dir,
    register_schema,
)


def _new_key_hint(err: BaseException) -> str:
    """Hydra's advice for a key the config does not have, if it gave one."""
    advice = [line for line in str(err).splitlines() if line.startswith("To append")]
    return f" ({advice[0][0].lower()}{advice[0][1:]})" if advice else ""


def _explain(err: BaseException) -> str:
    """One line for a Hydra/OmegaConf composition error."""
    from hydra.errors import MissingConfigException

    if isinstance(err, MissingConfigException) and err.options is not None:
        group, _, name = (err.missing_cfg_file or "").rpartition("/")
        return f"{group}={name} is not a known {group}; available: {', '.join(err.options)}"
    cause = err.__cause__
    if cause is not None:
        key = getattr(cause, "full_key", None)
        reason = first_line(cause)
        return (f"{key}: {reason}" if key and key not in reason else reason) + _new_key_hint(err)
    return first_line(err)


@contextlib.contextmanager
def hydra_config(cfg: Any) -> Iterator[None]:
    """Inside, Hydra's config is ``cfg``'s (for ``${hydra:...}``, as in a job); after, as before."""
    from hydra.core.hydra_config import HydraConfig

    instance = HydraConfig.instance()
    before = instance.cfg
    instance.set_config(cfg)
    try:
        yield
    finally:
        instance.cfg = before


def _choices_as_names(overrides: list[str]) -> list[str]:
    """``overrides`` with each number, boolean or null given to a key without a dot (a config
    group's choice) quoted as a name: ``diagnostics=2.0`` -> ``diagnostics='2.0'`` (and a
    list given to a deletion, ``~task=[]``, which takes one name)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    quoted = []
    for override in OverridesParser.create().parse_overrides(overrides):
        value = None if override.is_sweep_override() else override.value()
        names = isinstance(value, (str, dict)) or (
            not override.is_delete() and isinstance(value, list)
            and all(isinstance(v, str) for v in value))
        if (override.is_sweep_override() or "." in override.key_or_group
                or "=" not in override.input_line or names):
            quoted.append(override.input_line)
        else:
            written = override.input_line.partition("=")[2].strip()  # as typed: true, not True
            quoted.append(f"{override.get_key_element()}='{written}'")
    return quoted


def _compose(overrides: list[str]) -> Any:
    try:
        return compose(overrides, return_hydra_config=True)
    except (ValueError, TypeError) as err:
        # Hydra refuses a number (or null) as a config group's choice with a bare ValueError, a
        # list of them with a TypeError; with the choice quoted, its MissingConfigException names
        # the group and its options
        quoted = _choices_as_names(overrides)
        if quoted == overrides:
            raise
        compose(quoted, return_hydra_config=True)
        raise OptbenchError(f"{first_line(err)}: a config group takes the name of one of "
                            f"its configs (optbench list)") from None
    except AssertionError as err:  # OmegaConf's, for a key set under a value: train=3 train.steps=2
        raise OptbenchError(f"the overrides {' '.join(overrides)} do not compose: {first_line(err)} "
                            "(a key set under a value that is not a mapping?)") from None


def compose_checked(overrides: list[str], output_key: str | None = None) -> Any:
    """Compose the config of one run, as Hydra would, and check what it shows by itself
    (:func:`optbench.runner.config.check_composed`) and, for a run, that the dir at
    ``output_key`` can be made; every mistake is one line."""
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        cfg = _compose(overrides)
    except (HydraException, OmegaConfBaseException) as err:
        raise OptbenchError(_explain(err)) from None
    with hydra_config(cfg):
        check_composed(cfg)
        if output_key is not None:
            try:
                output_dir = OmegaConf.select(cfg, output_key, throw_on_missing=True)
            except OmegaConfBaseException as err:
                raise OptbenchError(f"{output_key}: {first_line(err)}") from None
            check_output_dir(output_key, str(output_dir))
    return cfg


def _variants(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The override lists to check: one per sweep value, the other keys at their first value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException, OverrideParseException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as err:
        raise OptbenchError(f"cannot parse the overrides: {first_line(err)}") from None
    choices: list[list[str]] = []
    for override in parsed:
        if not override.is_sweep_override():
            choices.append([override.input_line])
            continue
        if not multirun:
            raise OptbenchError(
                f"{override.input_line} is a sweep; run it with `optbench run -m ...` (multirun)"
            )
        try:
            values = list(override.sweep_string_iterator())
        except HydraException:  # interval sweeps belong to a sweeper (Optuna): checked per trial
            continue
        choices.append([f"{override.get_key_element()}={v}" for v in values])
    base = [values[0] for values in choices]
    variants = [base]
    for i, values in enumerate(choices):
        variants += [base[:i] + [v] + base[i + 1:] for v in values[1:]]
    return variants


def prepare(overrides: list[str], multirun: bool) -> tuple[list[str], Any, Path]:
    """Check every run the overrides describe; return them with the output dir made explicit
    (resolved once, here, so every job and every process agree on it), the composed config of
    the first run (with its ``hydra`` node), and that output dir."""
    from hydra.core.hydra_config import HydraConfig

    from optbench.runner import distributed
    from optbench.runner.spec import check

    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    first = None
    for variant in _variants(overrides, multirun):
        cfg = compose_checked(variant, output_key=key)
        with hydra_config(cfg):
            check(cfg)
        if multirun:  # its jobs run in the store
            check_output_dir("store", cfg.store)
        if first is None:
            HydraConfig.instance().set_config(cfg)  # as Hydra does, for ${hydra:...} in the dirs
            first = cfg
    # under torchrun every rank composes its own ${now:...}: all take rank 0's
    output_dir = distributed.agree(str(first.hydra.sweep.dir if multirun else first.hydra.run.dir))
    given = any(o.split("=", 1)[0] == key for o in overrides)
    return (overrides if given else [*overrides, f"{key}={output_dir}"]), first, Path(output_dir)


def run_prepared(cfg: Any, output_dir: Path) -> None:
    """Run one job from the config :func:`prepare` composed and checked, as ``@hydra.main`` does
    in run mode (Hydra's ``Hydra.run``: logging, callbacks, ``run_job``, its error report) but
    without composing it twice more: ``@hydra.main`` composes once to learn the mode and once to
    run, ~0.1 s each, a fifth of a small run's start-up beyond importing torch."""
    from hydra._internal.callbacks import Callbacks
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path, run_and_report
    from hydra.core.utils import configure_log, run_job
    from hydra.types import HydraContext, RunMode
    from omegaconf import open_dict, read_write

    from optbench.runner import distributed
    from optbench.sweeps.task_function import TaskFunction

    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.run.dir = str(output_dir)  # the dir prepare resolved, not a new ${now:...}
        cfg.hydra.mode = RunMode.RUN
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(config_dir())))

    def run() -> None:
        configure_log(cfg.hydra.hydra_logging, cfg.hydra.verbose)
        callbacks = Callbacks(cfg)
        callbacks.on_run_start(config=cfg, config_name="config")
        ret = run_job(hydra_context=HydraContext(config_loader=loader, callbacks=callbacks),
                      task_function=TaskFunction(), config=cfg, job_dir_key="hydra.run.dir",
                      job_subdir_key=None)
        callbacks.on_run_end(config=cfg, config_name="config", job_return=ret)
        ret.return_value  # noqa: B018 (raises the job's exception, as Hydra.run does)

    finished = False
    try:
        run_and_report(run)
        finished = True
    finally:
        distributed.shutdown(finished)


def launch(hydra_args: list[str]) -> None:
    """Run ``@hydra.main`` over ``hydra_args`` (overrides and Hydra flags, as on its command line)."""
    import hydra

    from optbench.runner import distributed
    from optbench.sweeps.task_function import TaskFunction

    register_schema()
    main = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")(TaskFunction())
    argv, sys.argv = sys.argv, [sys.argv[0], *hydra_args]
    finished = False
    try:
        main()
        finished = True
    finally:
        sys.argv = argv
        distributed.shutdown(finished)
