"""Optimisers and learning-rate schedule of a run: SGD, AdamW or LARS; linear warm-up then cosine decay."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from contrastkit.train.config import OptimConfig
from contrastkit.train.lars import LARS

NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def parameter_groups(model: nn.Module, weight_decay: float, exclude_bias_and_norm: bool = True) -> list[dict]:
    """Trainable parameters split in two groups: with weight decay, and without (biases, norm layers' parameters).

    The second group is marked ``lars_exclude=True`` (no LARS adaptation either), as in SimCLR and BYOL.
    Frozen parameters (``requires_grad=False``: momentum encoders) are left out.
    """
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            excluded = exclude_bias_and_norm and (isinstance(module, NORM_LAYERS) or name == "bias" or p.ndim <= 1)
            (no_decay if excluded else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "lars_exclude": False}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "lars_exclude": True})
    return groups


def build_optimizer(model: nn.Module, config: OptimConfig, global_batch: int) -> torch.optim.Optimizer:
    """The optimiser named in ``config``, learning rate ``config.lr * global_batch / 256``."""
    lr = config.lr * global_batch / 256
    groups = parameter_groups(model, config.weight_decay, config.exclude_bias_and_norm)
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


class WarmupCosine:
    """Learning-rate multiplier: linear from ``1 / warmup_steps`` to 1 over the warm-up, then cosine to ``min_ratio``.

    A class (not a lambda) so ``LambdaLR.state_dict`` saves its fields and a resumed run continues the schedule.

    Args:
        warmup_steps: optimiser steps of linear warm-up (0: none).
        total_steps: optimiser steps of the whole run.
        min_ratio: the multiplier at the end.
    """

    def __init__(self, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> None:
        self.warmup_steps = int(warmup_steps)
        self.total_steps = max(int(total_steps), 1)
        self.min_ratio = float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / span, 1.0)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, total_steps: int, steps_per_epoch: int
) -> dict[str, Any]:
    """The per-step warm-up + cosine schedule, in Lightning's scheduler-dict form."""
    schedule = WarmupCosine(round(config.warmup_epochs * steps_per_epoch), total_steps, config.min_lr_ratio)
    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), "interval": "step"}
