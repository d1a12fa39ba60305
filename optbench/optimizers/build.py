"""Building an optimizer from its config node, the model and the task's parameter roles.

A config with a ``fallback`` node routes ``matrix`` parameters to its own ``_target_`` and every
other role (embedding, head, vector) to the fallback (``optimizer.fallback.lr=...`` sets it).
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from optbench.optimizers.roles import ParamRole
from optbench.optimizers.router import RoleRouter
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
    groups = param_groups(model, roles)
    fallback = node.get("fallback")
    if fallback is None:
        return instantiate("optimizer", node, groups, skip=("params",))
    main = OmegaConf.masked_copy(node, [key for key in node if key != "fallback"])
    matrix = [g for g in groups if g["role"] == ParamRole.MATRIX.value]
    others = [g for g in groups if g["role"] != ParamRole.MATRIX.value]
    parts = {}
    if matrix:
        parts["matrix"] = instantiate("optimizer", main, matrix, skip=("params",))
    if others:
        parts["fallback"] = instantiate("optimizer.fallback", fallback, others, skip=("params",))
    return RoleRouter(parts)
