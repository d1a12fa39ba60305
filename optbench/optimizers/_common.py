"""Small helpers shared by the in-repo optimizers: hyperparameter checks and weight decay."""

from __future__ import annotations

from collections.abc import Callable

import torch


def closure_loss(closure: Callable[[], float] | None) -> float | None:
    """The ``step(closure)`` contract of torch.optim: re-evaluate the loss with gradients on."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def check_lr(lr: float) -> None:
    if not lr >= 0.0:
        raise ValueError(f"Invalid learning rate: {lr} (must be >= 0)")


def check_non_negative(name: str, value: float) -> None:
    if not value >= 0.0:
        raise ValueError(f"Invalid {name}: {value} (must be >= 0)")


def check_beta(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"Invalid {name}: {value} (must be in [0, 1))")


def check_betas(betas: tuple[float, ...], count: int) -> None:
    if len(betas) != count:
        raise ValueError(f"Invalid betas: {betas!r} (expected {count} values)")
    for i, beta in enumerate(betas):
        check_beta(f"beta{i + 1}", beta)


def check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= 1)")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"Invalid {name}: {value!r} (expected one of {', '.join(choices)})")


def resolve_dtype(value: str | torch.dtype, option: str = "dtype") -> torch.dtype:
    """A floating dtype from its name (``"float32"``, ``"bfloat16"``, ...) or itself."""
    dtype = getattr(torch, value, None) if isinstance(value, str) else value
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"Invalid {option}: {value!r} (expected e.g. 'float32' or 'bfloat16')")
    return dtype


def dtype_name(value: str | torch.dtype, option: str = "dtype") -> str:
    """The canonical name of a floating dtype; param groups store names (plain, picklable)."""
    return str(resolve_dtype(value, option)).removeprefix("torch.")


def decay_weights(param: torch.Tensor, lr: float, weight_decay: float) -> None:
    """Decoupled (AdamW-style) weight decay: ``p <- p * (1 - lr * weight_decay)``."""
    if weight_decay != 0.0:
        param.mul_(1.0 - lr * weight_decay)
