"""LARS: layer-wise adaptive rate scaling for large-batch SGD (the optimiser of SimCLR, BYOL and Barlow Twins)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor


class LARS(torch.optim.Optimizer):
    """SGD with momentum whose per-tensor step is scaled by the trust ratio ``eta * ||w|| / ||g + wd * w||``.

    You, Gitman and Ginsburg, "Large Batch Training of Convolutional Networks", arXiv 1708.03888. As in SimCLR and
    BYOL, parameter groups with ``lars_exclude=True`` (biases and normalisation parameters, see
    :func:`~contrastkit.optim.parameter_groups.parameter_groups`) get neither weight decay nor the adaptation (plain SGD
    with momentum). The update for a tensor ``w`` with gradient ``g``::

        g <- g + weight_decay * w
        g <- g * eta * ||w|| / ||g||          (when both norms are > 0)
        v <- momentum * v + g;  w <- w - lr * v

    Args:
        params: parameters or parameter groups (a group may set ``lars_exclude``).
        lr: learning rate.
        momentum: momentum factor.
        weight_decay: L2 penalty added to the gradient before the trust ratio.
        eta: trust coefficient.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eta: float = 0.001,
    ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ValueError(
                f"LARS needs lr, momentum, weight_decay >= 0 and eta > 0, got {lr}, {momentum}, {weight_decay}, {eta}"
            )
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta, "lars_exclude": False}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One LARS update of every parameter group; ``closure`` re-evaluates the loss (returned) when given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            exclude = group["lars_exclude"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if not exclude:
                    if group["weight_decay"]:
                        g = g.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                    trust = torch.where((w_norm > 0) & (g_norm > 0), group["eta"] * w_norm / g_norm, 1.0)
                    g = g * trust
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.clone(g).detach()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(g)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss
