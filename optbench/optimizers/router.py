"""Several optimizers acting as one: a matrix optimizer for ``matrix`` parameters and a fallback
for the rest, the way SWAN, GaLore and Muon are run in their papers.

The router is a real ``torch.optim.Optimizer`` so that LR schedulers, checkpoints and memory
accounting treat it like any other. Its ``param_groups`` are its parts' own group dicts (not
copies), so a scheduler's lr changes reach the parts, each from its own base lr.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from optbench.optimizers._common import closure_loss


class _MergedState(Mapping):
    """The parts' states as one read-only mapping (not a ChainMap: a lookup falling through a
    part's defaultdict would create empty entries in it)."""

    def __init__(self, parts: dict[str, torch.optim.Optimizer]) -> None:
        self._parts = parts

    def __getitem__(self, param: torch.Tensor) -> Any:
        for part in self._parts.values():
            if param in part.state:
                return part.state[param]
        raise KeyError(param)

    def __iter__(self) -> Iterator[torch.Tensor]:
        for part in self._parts.values():
            yield from part.state

    def __len__(self) -> int:
        return sum(len(part.state) for part in self._parts.values())


class RoleRouter(torch.optim.Optimizer):
    def __init__(self, parts: dict[str, torch.optim.Optimizer]) -> None:
        if not parts:
            raise ValueError("RoleRouter needs at least one optimizer")
        params = [p for part in parts.values() for g in part.param_groups for p in g["params"]]
        super().__init__(params, defaults={})
        self.parts = parts
        self.param_groups = [g for part in parts.values() for g in part.param_groups]
        self.state = _MergedState(parts)  # type: ignore[assignment]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = closure_loss(closure)
        for part in self.parts.values():
            part.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts.values():
            part.zero_grad(set_to_none=set_to_none)

    def train(self) -> None:
        """Forwarded to parts that have train/eval modes (Schedule-Free)."""
        for part in self.parts.values():
            if hasattr(part, "train"):
                part.train()

    def eval(self) -> None:
        for part in self.parts.values():
            if hasattr(part, "eval"):
                part.eval()

    def state_dict(self) -> dict[str, Any]:
        return {"parts": {name: part.state_dict() for name, part in self.parts.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict["parts"]
        if set(saved) != set(self.parts):
            raise ValueError(f"checkpoint holds optimizers {sorted(saved)}, expected {sorted(self.parts)}")
        for name, part in self.parts.items():
            part.load_state_dict(saved[name])

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={type(part).__name__}" for name, part in self.parts.items())
        return f"RoleRouter({inner})"
