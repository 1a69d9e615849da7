"""Optimisers and learning-rate schedule of a run: SGD, AdamW or LARS; linear warm-up then cosine decay."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from contrastkit.train.config import OptimConfig
from contrastkit.train.lars import LARS

NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def parameter_groups(
    model: nn.Module, weight_decay: float, exclude_bias_and_norm: bool = True, skip: Collection[int] = ()
) -> list[dict]:
    """Trainable parameters split in two groups: with weight decay, and without (biases, norm layers' parameters).

    The second group is marked ``lars_exclude=True`` (no LARS adaptation either), as in SimCLR and BYOL.
    Frozen parameters (``requires_grad=False``: momentum encoders) are left out, and so are those whose ``id`` is
    in ``skip`` (grouped elsewhere).
    """
    decay, no_decay, seen = [], [], set(skip)
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


MAX_WARMUP_FRACTION = 0.1  # a warm-up longer than this fraction of the run's optimiser steps is shortened to it


@dataclass(frozen=True)
class SchedulePlan:
    """The learning-rate schedule of a run in optimiser steps, from the steps the run will actually take."""

    total_steps: int  # optimiser steps of the whole run (whichever of max_epochs / max_steps ends it first)
    steps_per_epoch: int  # optimiser steps per epoch (batches per process per epoch / accumulation, rounded up)
    warmup_steps: int  # linear warm-up steps, after the MAX_WARMUP_FRACTION cap
    requested_warmup_steps: int  # optim.warmup_epochs x steps_per_epoch, before the cap

    @property
    def note(self) -> str | None:
        """One line saying the warm-up was shortened (None when it was not)."""
        if self.warmup_steps == self.requested_warmup_steps:
            return None
        return (
            f"contrastkit: optim.warmup_epochs asks for {self.requested_warmup_steps} warm-up steps, more than "
            f"{MAX_WARMUP_FRACTION:.0%} of the run's {self.total_steps} optimiser steps: warming up for "
            f"{self.warmup_steps} steps instead"
        )


def plan_schedule(
    warmup_epochs: float, batches_per_epoch: int, accumulate: int, max_epochs: int, max_steps: int = -1
) -> SchedulePlan:
    """Warm-up and total steps of a run that ends at ``max_epochs`` or ``max_steps`` (-1: none), whichever first.

    Args:
        warmup_epochs: ``optim.warmup_epochs`` (fractions allowed).
        batches_per_epoch: batches one process takes per epoch (the per-process shard, after
            ``limit_train_batches``): the same count for any number of processes sharing one global batch.
        accumulate: batches per optimiser step; the last, shorter group of an epoch also steps (as Lightning does).
        max_epochs: epochs of the run.
        max_steps: optimiser steps of the run (-1: no limit).
    """
    if batches_per_epoch < 1 or accumulate < 1 or max_epochs < 1:
        raise ValueError(
            f"batches_per_epoch, accumulate and max_epochs must be >= 1, got {batches_per_epoch}, {accumulate} "
            f"and {max_epochs}"
        )
    per_epoch = math.ceil(batches_per_epoch / accumulate)
    total = per_epoch * max_epochs if max_steps < 0 else min(per_epoch * max_epochs, max_steps)
    total = max(total, 1)
    requested = round(warmup_epochs * per_epoch)
    return SchedulePlan(total, per_epoch, min(requested, math.floor(MAX_WARMUP_FRACTION * total)), requested)


def build_scheduler(optimizer: torch.optim.Optimizer, config: OptimConfig, plan: SchedulePlan) -> dict[str, Any]:
    """The per-step warm-up + cosine schedule of ``plan``, in Lightning's scheduler-dict form."""
    schedule = WarmupCosine(plan.warmup_steps, plan.total_steps, config.min_lr_ratio)
    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), "interval": "step"}
