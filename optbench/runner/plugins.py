"""Building plugins (tasks, optimizers, schedules, loggers) from their config nodes.

Hydra's ``instantiate`` does the building. Before it, every key is checked against the target's
signature (unknown keys, and types through pydantic), so a user mistake becomes one line naming
the key, the value and what is accepted, instead of a traceback from deep inside the plugin.
"""

from __future__ import annotations

import inspect
import math
import typing
from functools import cache
from typing import Any

from omegaconf import DictConfig, OmegaConf

from optbench.errors import OptbenchError

_RESERVED = ("_target_", "_recursive_", "_convert_", "_partial_", "_args_")


def locate_target(group: str, node: DictConfig) -> Any:
    from hydra.utils import get_object

    target = node.get("_target_")
    if not target:
        raise OptbenchError(f"{group} config has no _target_; it must name the class to build")
    try:
        return get_object(target)
    except Exception as err:  # Hydra wraps ImportError/AttributeError in its own types  # noqa: BLE001
        raise OptbenchError(f"{group}._target_={target} cannot be imported ({err.__cause__ or err})")


@cache
def _signature(target: Any) -> tuple[inspect.Signature, dict[str, Any]]:
    fn = target.__init__ if inspect.isclass(target) else target
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: check names only  # noqa: BLE001
        hints = {}
    return inspect.signature(fn), hints


INT64 = 2**63 - 1  # the largest integer torch (and numpy) take as a number


def _unrepresentable(key: str, value: Any) -> tuple[str, Any] | None:
    """The first ``key``, ``key[i]`` or ``key.k`` in ``value`` that holds nan, ±inf or an
    integer beyond 64 bits, with its value."""
    if isinstance(value, float) and not math.isfinite(value):
        return key, value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64:
        return key, value
    if isinstance(value, (list, tuple)):
        items: Any = ((f"{key}[{i}]", v) for i, v in enumerate(value))
    elif isinstance(value, dict):
        items = ((f"{key}.{k}", v) for k, v in value.items())
    else:
        return None
    return next((found for k, v in items if (found := _unrepresentable(k, v)) is not None), None)


def check_finite(group: str, options: dict[str, Any]) -> None:
    """Raise OptbenchError for a number among a plugin's options that is nan, infinite or an
    integer beyond 64 bits (a learning rate of nan would only show later, as a divergence; an
    integer too large, as an OverflowError inside torch)."""
    for key, value in options.items():
        found = _unrepresentable(key, value)
        if found is not None:
            what = "out of range" if isinstance(found[1], int) else "not a finite number"
            raise OptbenchError(f"{group}.{found[0]}={found[1]} is {what}; accepted: a finite "
                                "number (no nan or inf), an integer within ±(2**63 - 1)")


def check_node(group: str, node: Any) -> None:
    """Raise OptbenchError for what a plugin group's node (``task``, ``optimizer``, ...) shows
    without its target being imported: nan or infinite numbers, and options given to a config
    that builds nothing (no ``_target_``, as ``diagnostics=none``), which would have no effect."""
    if not isinstance(node, DictConfig):
        return
    options = OmegaConf.to_container(node, resolve=True)
    options = {k: v for k, v in options.items() if k not in _RESERVED}
    check_finite(group, options)
    if node.get("_target_") is None and options:
        key, value = next(iter(options.items()))
        raise OptbenchError(f"{group}.{key}={value!r} has no effect: the {group} config chosen builds "
                            f"nothing (no _target_), so it takes no options; choose one that does "
                            f"({group}=NAME, see `optbench list`)")


def check_arguments(group: str, target: Any, kwargs: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
    """Raise OptbenchError for a key ``target`` does not take, a value of the wrong type, or a
    number that is nan or infinite."""
    from pydantic import ConfigDict, TypeAdapter, ValidationError

    check_finite(group, kwargs)
    signature, hints = _signature(target)
    params = {n: p for n, p in signature.parameters.items() if n not in ("self", *skip)}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key, value in kwargs.items():
        if key not in params:
            if takes_any:
                continue
            raise OptbenchError(
                f"{group}.{key} is not an option of {target.__name__}; accepted: {', '.join(accepted)}"
            )
        if key not in hints:
            continue
        adapter = TypeAdapter(hints[key], config=ConfigDict(arbitrary_types_allowed=True))
        try:
            adapter.validate_python(value)
        except ValidationError as err:
            first = err.errors()[0]["msg"]
            raise OptbenchError(f"{group}.{key}={value!r} is invalid: {first}") from None


def instantiate(group: str, node: DictConfig, *args: Any, skip: tuple[str, ...] = (), **extra: Any) -> Any:
    """Check ``node`` against its target, then build it with Hydra (``*args`` go first)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    target = locate_target(group, node)
    kwargs = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k not in _RESERVED}
    check_arguments(group, target, {**kwargs, **extra}, skip=skip)
    try:
        # Plugins receive plain values; nested configs are theirs to interpret (not recursive).
        return hydra_instantiate(node, *args, _convert_="all", _recursive_=False, **extra)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, OptbenchError):
            raise cause from None
        if isinstance(cause, ValueError):  # torch.optim and friends validate values this way
            raise OptbenchError(f"{group} ({target.__name__}): {cause}") from None
        raise
