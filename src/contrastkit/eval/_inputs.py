"""Shared input checks of the evaluation functions: clear errors naming the argument."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor


def as_embeddings(name: str, x: Any) -> Tensor:
    """``x`` as a float32 ``(N, D)`` CPU tensor; refuses other ranks, empty input and NaN/inf values."""
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, Tensor) else x.detach()
    if t.dim() != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array of embeddings, got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)})")
    t = t.float()
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).any(dim=1).sum())
        raise ValueError(f"{name} has NaN or infinite values in {bad} of {t.shape[0]} rows")
    return t


def as_labels(name: str, y: Any, n: int, embeddings_name: str) -> Tensor:
    """``y`` as an int64 ``(n,)`` tensor of class ids >= 0."""
    t = torch.as_tensor(np.asarray(y.cpu() if isinstance(y, Tensor) else y))
    if t.dim() != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {tuple(t.shape)}")
    if len(t) != n:
        raise ValueError(f"{name} has {len(t)} labels but {embeddings_name} has {n} rows")
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        if t.dtype.is_floating_point and not bool((t == t.round()).all()):
            raise ValueError(f"{name} must hold integer class ids, got non-integer values")
    t = t.long()
    if bool((t < 0).any()):
        raise ValueError(
            f"{name} has negative class ids (e.g. {int(t[t < 0][0])}); unlabelled samples cannot be scored"
        )
    return t


def same_dim(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{name_a} has dimension {a.shape[1]} but {name_b} has {b.shape[1]}: they must match")
