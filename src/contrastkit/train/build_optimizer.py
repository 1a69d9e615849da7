"""The optimiser and schedule of a ``contrastkit train`` run, built from its config: SGD, AdamW or LARS over
:func:`~contrastkit.optim.parameter_groups.parameter_groups`, and :class:`~contrastkit.optim.warmup_cosine.WarmupCosine`
per step."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from contrastkit.optim.lars import LARS
from contrastkit.optim.parameter_groups import parameter_groups
from contrastkit.optim.warmup_cosine import SchedulePlan, WarmupCosine
from contrastkit.train.config import OptimConfig


def scaled_groups(model: nn.Module, config: OptimConfig, lr: float) -> list[dict]:
    """:func:`parameter_groups` with each group's learning rate: ``lr``, and ``lr * config.backbone_lr_ratio`` for
    the parameters of ``model.backbone`` (a method's encoder) when the ratio is below 1."""
    backbone = getattr(model, "backbone", None)
    if config.backbone_lr_ratio == 1.0 or not isinstance(backbone, nn.Module):
        groups = parameter_groups(model, config.weight_decay, config.exclude_bias_and_norm)
        return [dict(group, lr=lr) for group in groups]
    own = {id(p) for p in backbone.parameters()}
    groups = [dict(g, lr=lr) for g in parameter_groups(model, config.weight_decay, config.exclude_bias_and_norm, own)]
    slow = lr * config.backbone_lr_ratio
    groups += [dict(g, lr=slow) for g in parameter_groups(backbone, config.weight_decay, config.exclude_bias_and_norm)]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, config: OptimConfig, global_batch: int) -> torch.optim.Optimizer:
    """The optimiser named in ``config``, learning rate ``config.lr * global_batch / 256`` (the backbone's times
    ``config.backbone_lr_ratio``)."""
    lr = config.lr * global_batch / 256
    groups = scaled_groups(model, config, lr)
    if config.name == "sgd":
        for g in groups:
            g.pop("lars_exclude")
        return torch.optim.SGD(groups, lr=lr, momentum=config.momentum)
    if config.name == "adamw":
        for g in groups:
            g.pop("lars_exclude")
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(config.betas))
    if config.name == "lars":
        return LARS(groups, lr=lr, momentum=config.momentum, eta=config.lars_eta)
    raise ValueError(f"optim.name must be sgd, adamw or lars, got {config.name!r}")


def build_scheduler(optimizer: torch.optim.Optimizer, config: OptimConfig, plan: SchedulePlan) -> dict[str, Any]:
    """The per-step warm-up + cosine schedule of ``plan``, in Lightning's scheduler-dict form."""
    schedule = WarmupCosine(plan.warmup_steps, plan.total_steps, config.min_lr_ratio)
    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), "interval": "step"}
