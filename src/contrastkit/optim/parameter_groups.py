"""Parameter groups with and without weight decay, as the self-supervised papers train."""

from __future__ import annotations

from collections.abc import Collection

from torch import nn

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
