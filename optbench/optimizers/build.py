"""Building an optimizer from its config node, the model and the task's parameter roles."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from optbench.optimizers.roles import ParamRole
from optbench.plugins import instantiate


def param_groups(model: nn.Module, roles: dict[str, ParamRole]) -> list[dict]:
    """One group per role present, in ``ParamRole`` order, each tagged ``{"role": ...}``."""
    by_role: dict[ParamRole, list[nn.Parameter]] = {role: [] for role in ParamRole}
    for name, p in model.named_parameters():
        if p.requires_grad:
            by_role[ParamRole(roles[name])].append(p)
    return [{"params": ps, "role": role.value} for role, ps in by_role.items() if ps]


def build_optimizer(
    node: DictConfig, model: nn.Module, roles: dict[str, ParamRole]
) -> torch.optim.Optimizer:
    return instantiate("optimizer", node, param_groups(model, roles), skip=("params",))
