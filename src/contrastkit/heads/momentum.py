"""Momentum (exponential moving average) target networks: update, schedule and freezing."""

from __future__ import annotations

import math

import torch
from torch import nn


@torch.no_grad()
def update_momentum(model: nn.Module, ema_model: nn.Module, m: float) -> None:
    """Update ``ema_model`` in place as the exponential moving average of ``model``.

    Grill et al. 2020, "Bootstrap Your Own Latent" (BYOL, arXiv 2006.07733): ``xi <- m * xi + (1 - m) * theta``
    for every parameter. Buffers (e.g. BatchNorm running statistics) are copied from ``model``.

    Args:
        model: the online network.
        ema_model: the target network, with the same structure as ``model``.
        m: momentum in ``[0, 1]``; 1 keeps ``ema_model`` unchanged, 0 copies ``model``.
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum m must be in [0, 1], got {m}")
    params = list(model.parameters())
    ema_params = list(ema_model.parameters())
    buffers = list(model.buffers())
    ema_buffers = list(ema_model.buffers())
    if len(params) != len(ema_params) or len(buffers) != len(ema_buffers):
        raise ValueError("model and ema_model must have the same parameters and buffers")
    for p, ema_p in zip(params, ema_params, strict=True):
        if p.shape != ema_p.shape:
            raise ValueError(f"parameter shapes differ: {tuple(p.shape)} vs {tuple(ema_p.shape)}")
        ema_p.mul_(m).add_(p.detach().to(ema_p.dtype), alpha=1.0 - m)
    for b, ema_b in zip(buffers, ema_buffers, strict=True):
        ema_b.copy_(b)


def cosine_momentum(step: int, max_steps: int, start: float = 0.996, end: float = 1.0) -> float:
    """BYOL's momentum schedule, increasing from ``start`` at step 0 to ``end`` at ``max_steps``.

    Grill et al. 2020 (BYOL, arXiv 2006.07733): ``m = end - (end - start) * (cos(pi * step / max_steps) + 1) / 2``.
    Steps past ``max_steps`` give ``end``. lightly's ``cosine_schedule(step, n, ...)`` divides by ``n - 1``, so it
    equals ``cosine_momentum(step, n - 1, ...)``.

    Args:
        step: current step, counted from 0.
        max_steps: total number of steps (the step at which ``end`` is reached).
        start: momentum at step 0 (0.996 in BYOL).
        end: final momentum (1.0 in BYOL).
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if max_steps < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    if max_steps == 0 or step >= max_steps:
        return float(end)
    return float(end - (end - start) * (math.cos(math.pi * step / max_steps) + 1.0) / 2.0)


def deactivate_requires_grad(module: nn.Module) -> nn.Module:
    """Set ``requires_grad=False`` on all parameters of ``module`` (e.g. a momentum target) and return it."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module
